-- wrk script for bench/ingest.py: Smartly `message_received` turns.
--
--   wrk -t1 -c32 -d10s --latency -s bench/ingest.lua URL -- SALT USERS HELP_PERCENT IN_HANDOVER FRESH
--
-- URL is the integration's Smartly webhook URL (path and ?key=...).
-- Every body is unique (SALT, thread and counter in `client_session_id`,
-- `input` and `total_processing_time`), so the connector's dedupe never drops
-- one; SALT must differ between runs against the same database.
-- `user_id` is drawn from USERS distinct end users ("user-0" ...). Users below
-- IN_HANDOVER already have an open ticket (bench/ingest.py opened them): their
-- turns are those of a muted bot (`muted: true`, no `answer`), as Smartly sends
-- them during a handover. HELP_PERCENT of the turns carry need_help=true; with
-- FRESH=1 each of those comes from a new end user ("esc-SALT-THREAD-N"), so every
-- one opens a ticket (tickets opening under load), else from the USERS.
-- The body has every field of the documented example (reference: Smartly.ai
-- webhooks guide, message_received); it is the body of `turn` in
-- bench/lib/smartly.py, the one builder the tests and the Python benchmarks
-- share; wrk runs Lua, which cannot import it, so this template is a copy:
-- change both together.
--
-- The script is kept light so that the load generator is not what limits the
-- bare ceiling: each user's part of the body is built once in `init`, a request
-- is a few concatenations, and the HTTP request is written by hand instead of
-- through `wrk.format` (which walks a headers table per request).
-- `done` prints one machine-readable line starting with "BENCH ".

local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

-- The payload in three pieces around what differs per request (see `request`).
local function user_part(user, kind)
  -- kind: "bot" (the bot answers), "muted" (in handover), "help" (asks for a human)
  local help = kind == "help"
  local answer
  if kind == "bot" then answer = '"Votre commande est en cours de livraison"'
  elseif kind == "help" then answer = '"Nous allons vérifier si un agent est disponible"'
  else answer = "null" end
  local muted = (kind ~= "bot") and "true" or "false"
  return table.concat({
    [[","intent":"]], help and "HelpIntent" or "OrderStatusIntent",
    [[","intent_slug":"]], help and "sysHelpIntentfrfr" or "orderStatusfrfr",
    [[","intent_id":"123abc","confidence":]], help and "1" or "0.87",
    [[,"confidence_threshold":0.2,"custom_entities":{},"system_entities":{},"alternatives":[],]],
    [["understood":true,"understood_nlu":true,"never_trained":false,"state_id":"123abc",]],
    [["state_name":"]], help and "un conseiller va vous contacter" or "suivi de commande",
    [[","answer":]], answer, [[,"reprompt":null,"end_session":false,]],
    [["user_id":"]], user, [[","platform":"webchat","muted":]], muted,
    [[,"need_help":]], help and "true" or "false", [[,]],
    [["handover_category_name":"","payload":{},"no_reply_prompt":"",]],
    [["probabilistic_nlu_processing_time":0.093,"rule_based_nlu_processing_time":0,]],
    [["dialog_management_processing_time":0.005,"rich_text":[],"show_answer_survey":false,]],
    [["show_conversation_survey":false,"webchat_input_place_holder":"","webchat_hidden_input":null,]],
    [["has_webhook_integration":true,"lang":"fr-fr","skill_id":"123abc","input_type":"text",]],
    [["client_id":"]], user, [[","master_bot":false,"client_session_id":"sess-]],
  })
end

local INPUT_A = [[{"event":"message_received","payload":{"input":"Bonjour, ma commande ]]
local INPUT_B = [[ n'est pas arrivée","corrected_input":"Bonjour, ma commande ]]
local INPUT_C = [[ n'est pas arrivée]]
local TAIL_A = [[","first_client_session_id":null,"nlu_model":{"name":"SNP 1.06","version":"1.06 RC3"},]] ..
  [["number_of_nounderstood":0,"is_smartly_integration":true,"is_simulator":false,]] ..
  [["event_name":"NEW_INPUT","total_processing_time":0.]]
local TAIL_B = "}}"

function init(args)
  salt = args[1] or tostring(os.time())
  users = tonumber(args[2] or "1000")
  help_percent = tonumber(args[3] or "5")
  in_handover = tonumber(args[4] or "0")
  fresh = (args[5] or "0") == "1"
  help_per_10k = math.floor(help_percent * 100 + 0.5)
  sent = 0
  helped = 0
  prefix = salt .. "-" .. tid .. "-"
  head = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port ..
    "\r\nContent-Type: application/json\r\nContent-Length: "
  parts, help_parts = {}, {}
  for u = 0, users - 1 do
    local user = "user-" .. u
    parts[u] = user_part(user, u < in_handover and "muted" or "bot")
    help_parts[u] = user_part(user, "help")
  end
  -- A per-thread linear congruential generator: reproducible, no shared state.
  rng = (tonumber(tid) * 7919 + #salt * 104729) % 2147483647
end

function request()
  sent = sent + 1
  rng = (rng * 48271) % 2147483647
  local u = rng % users
  rng = (rng * 48271) % 2147483647
  local ref = prefix .. sent
  local part
  if (rng % 10000) < help_per_10k then
    helped = helped + 1
    if fresh then part = user_part("esc-" .. ref, "help") else part = help_parts[u] end
  else
    part = parts[u]
  end
  local body = INPUT_A .. ref .. INPUT_B .. ref .. INPUT_C .. part .. ref .. TAIL_A ..
    string.format("%06d", sent % 1000000) .. TAIL_B
  return head .. #body .. "\r\n\r\n" .. body
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
