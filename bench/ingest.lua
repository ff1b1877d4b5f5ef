-- wrk script for bench/ingest.py: Smartly `message_received` turns.
--
--   wrk -t2 -c64 -d15s --latency -s bench/ingest.lua URL -- SALT USERS HELP_PERCENT
--
-- URL is the integration's Smartly webhook URL (path and ?key=...).
-- Every body is unique (SALT, thread and counter in `client_session_id`,
-- `input` and `total_processing_time`), so the connector's dedupe never drops
-- one; SALT must differ between runs against the same database.
-- `user_id` is drawn from USERS distinct end users; HELP_PERCENT of the turns
-- carry need_help=true. The body has every field of the documented example
-- (reference: Smartly.ai webhooks guide, message_received).
-- It is the body of `turn` in bench/lib/smartly.py, the one builder the tests
-- and the Python benchmarks share; wrk runs Lua, which cannot import it, so
-- this template is a copy: change both together.
-- `done` prints one machine-readable line starting with "BENCH ".

local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

local template = [[{"event":"message_received","payload":{]] ..
  [["input":"Bonjour, ma commande %s n'est pas arrivée","corrected_input":"Bonjour, ma commande %s n'est pas arrivée",]] ..
  [["intent":"%s","intent_slug":"%s","intent_id":"123abc","confidence":%s,]] ..
  [["confidence_threshold":0.2,"custom_entities":{},"system_entities":{},"alternatives":[],]] ..
  [["understood":true,"understood_nlu":true,"never_trained":false,"state_id":"123abc",]] ..
  [["state_name":"%s","answer":"%s","reprompt":null,"end_session":false,]] ..
  [["user_id":"%s","platform":"webchat","muted":%s,"need_help":%s,]] ..
  [["handover_category_name":"","payload":{},"no_reply_prompt":"",]] ..
  [["probabilistic_nlu_processing_time":0.093,"rule_based_nlu_processing_time":0,]] ..
  [["dialog_management_processing_time":0.005,"rich_text":[],"show_answer_survey":false,]] ..
  [["show_conversation_survey":false,"webchat_input_place_holder":"","webchat_hidden_input":null,]] ..
  [["has_webhook_integration":true,"lang":"fr-fr","skill_id":"123abc","input_type":"text",]] ..
  [["client_id":"%s","master_bot":false,"client_session_id":"%s",]] ..
  [["first_client_session_id":null,"nlu_model":{"name":"SNP 1.06","version":"1.06 RC3"},]] ..
  [["number_of_nounderstood":0,"is_smartly_integration":true,"is_simulator":false,]] ..
  [["event_name":"NEW_INPUT","total_processing_time":%s}}]]

local headers = {["Content-Type"] = "application/json"}

function init(args)
  salt = args[1] or tostring(os.time())
  users = tonumber(args[2] or "1000")
  help_percent = tonumber(args[3] or "5")
  sent = 0
  helped = 0
  -- A per-thread linear congruential generator: reproducible, no shared state.
  rng = (tonumber(tid) * 7919 + #salt * 104729) % 2147483647
end

local function next_rand()
  rng = (rng * 48271) % 2147483647
  return rng
end

function request()
  sent = sent + 1
  local n = sent
  local user = "user-" .. (next_rand() % users)
  local help = (next_rand() % 10000) < help_percent * 100
  if help then helped = helped + 1 end
  local ref = salt .. "-" .. tid .. "-" .. n
  local body = string.format(template, ref, ref,
    help and "HelpIntent" or "OrderStatusIntent",
    help and "sysHelpIntentfrfr" or "orderStatusfrfr",
    help and "1" or "0.87",
    help and "un conseiller va vous contacter" or "suivi de commande",
    help and "Nous allons vérifier si un agent est disponible"
      or "Votre commande est en cours de livraison",
    user, help and "true" or "false", help and "true" or "false",
    user, "sess-" .. ref, string.format("0.%06d", n % 1000000))
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local total_sent, total_helped = 0, 0
  for _, thread in ipairs(threads) do
    total_sent = total_sent + (tonumber(thread:get("sent")) or 0)
    total_helped = total_helped + (tonumber(thread:get("helped")) or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH duration_us=%d requests=%d bytes=%d sent=%d need_help=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f\n",
    summary.duration, summary.requests, summary.bytes, total_sent, total_helped,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
