// Ticket actions shared by the agent and supervisor views: claim, transfer
// (dialog), resolve (dialog), assign, resend. Results update the store at once;
// the stream brings the same change to everyone else.

import { ApiError, errorText, get, post } from "./api.js";
import { surveyChoice } from "./csat.js";
import { $, h, mount } from "./dom.js";
import { store } from "./store.js";
import { toast } from "./toast.js";

function setupDialog(dialog) {
  if (dialog.dataset.ready) return;
  dialog.dataset.ready = "1";
  for (const b of dialog.querySelectorAll("[data-close]")) b.addEventListener("click", () => dialog.close());
}

function showError(el, err) {
  el.textContent = err ? errorText(err) : "";
  el.hidden = !err;
}

export async function claim(ticketId) {
  store.claiming.add(ticketId);
  try {
    const summary = await post(`/api/tickets/${ticketId}/claim`);
    store.upsertTicket(summary);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && err.body.assignee) {
      toast(`${err.body.assignee} took this conversation first.`, "error");
    } else if (err instanceof ApiError && err.status === 403) {
      // An agent is not told who holds a ticket they may not see (nor is GET).
      toast("Too late: this conversation is no longer in the queue.", "error");
    } else toast(`Could not claim: ${errorText(err)}`, "error");
    store.openTicket(ticketId);
    return false;
  } finally {
    setTimeout(() => store.claiming.delete(ticketId), 5000);
  }
}

/** Hand a ticket to `username`, or back to the queue when null. */
export async function assign(ticketId, username) {
  if (username === store.me?.username) store.claiming.add(ticketId);
  try {
    const summary = await post(`/api/tickets/${ticketId}/transfer`, { to: username });
    store.upsertTicket(summary);
    toast(username ? `Assigned to ${username}.` : "Back in the queue.");
    return true;
  } catch (err) {
    toast(`Could not transfer: ${errorText(err)}`, "error");
    return false;
  }
}

export async function resend(messageId, ticketId) {
  try {
    const res = await post(`/api/messages/${messageId}/resend`);
    store.setDelivery(ticketId, messageId, res.delivery);
  } catch (err) {
    toast(`Could not re-send: ${errorText(err)}`, "error");
  }
}

function agentOption(agent, current) {
  const id = `transfer-to-${agent.username}`;
  return h("label", { class: "choice", for: id },
    h("input", { type: "radio", name: "transfer-to", id, value: agent.username, disabled: agent.username === current }),
    h("span", { class: ["presence", agent.online ? "online" : "offline"], "aria-hidden": "true" }),
    h("span", { class: "choice-name", title: agent.username }, agent.username),
    h("span", { class: "choice-meta" },
      `${agent.role} · ${agent.online ? "online" : "offline"} · ${agent.open_tickets} open`,
      agent.username === current ? " · current" : ""));
}

export async function openTransfer(ticket) {
  const dialog = $("#dlg-transfer");
  setupDialog(dialog);
  const options = $("#transfer-options");
  const error = $("#transfer-error");
  showError(error, null);
  $("#transfer-sub").textContent = `Conversation #${ticket.id} with ${ticket.end_user || "the end user"}.`;
  const queueId = "transfer-to-queue";
  mount(options, h("legend", { class: "visually-hidden" }, "Transfer to"),
    h("label", { class: "choice", for: queueId },
      h("input", { type: "radio", name: "transfer-to", id: queueId, value: "", disabled: ticket.state === "queued" }),
      h("span", { class: "presence none", "aria-hidden": "true" }),
      h("span", { class: "choice-name" }, "Back to the queue"),
      h("span", { class: "choice-meta" }, "any colleague can pick it up")),
    h("p", { class: "choice-loading" }, "Loading colleagues…"));
  dialog.showModal();
  try {
    const data = await get("/api/agents");
    const agents = data.agents.filter((a) => a.username !== store.me?.username || store.isStaff)
      .sort((a, b) => Number(b.online) - Number(a.online) || a.open_tickets - b.open_tickets || a.username.localeCompare(b.username));
    options.querySelector(".choice-loading")?.remove();
    for (const a of agents) options.append(agentOption(a, ticket.assignee));
  } catch (err) {
    showError(error, err);
  }
  options.querySelector("input:not([disabled])")?.focus();
  const form = $("#transfer-form");
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const picked = form.querySelector("input[name=transfer-to]:checked");
    if (!picked) {
      showError(error, new Error("Pick a colleague or the queue."));
      return;
    }
    $("#transfer-submit").disabled = true;
    try {
      const summary = await post(`/api/tickets/${ticket.id}/transfer`, { to: picked.value || null });
      store.upsertTicket(summary);
      dialog.close();
      toast(picked.value ? `Transferred to ${picked.value}.` : "Back in the queue.");
    } catch (err) {
      showError(error, err);
    } finally {
      $("#transfer-submit").disabled = false;
    }
  };
}

export function openResolve(ticket) {
  const dialog = $("#dlg-resolve");
  setupDialog(dialog);
  const error = $("#resolve-error");
  const text = $("#resolve-message");
  showError(error, null);
  text.value = "";
  text.disabled = ticket.state !== "assigned";
  const survey = surveyChoice(ticket);
  $("#dlg-resolve-title").textContent = ticket.state === "queued" ? "Close unanswered conversation" : "Resolve conversation";
  dialog.showModal();
  text.focus();
  const form = $("#resolve-form");
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    $("#resolve-submit").disabled = true;
    try {
      const closing = text.value.trim();
      const summary = await post(`/api/tickets/${ticket.id}/resolve`, { ...(closing ? { closing_message: closing } : {}), ...survey() });
      store.upsertTicket(summary);
      dialog.close();
      toast(`Conversation #${ticket.id} resolved.`);
    } catch (err) {
      showError(error, err);
    } finally {
      $("#resolve-submit").disabled = false;
    }
  };
  text.onkeydown = (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
  };
}
