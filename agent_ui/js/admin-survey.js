// Bot admins: an integration's satisfaction survey (issue 14), the question and
// the five quick-reply labels sent on resolve when the agent ticks "Send
// satisfaction survey" (PATCH /api/integrations/{id} survey_question,
// survey_labels). Empty: the defaults, the question in the ticket's language
// and the labels "1 ★" .. "5 ★".

import { patch } from "./api.js";
import { h } from "./dom.js";
import { toast } from "./toast.js";

/** The survey box of integration `i`; `field` and `formError` are the admin page's
 * form helpers, `saved` reloads the page's list. */
export function surveyForm(i, field, formError, saved) {
  const question = h("input", { id: `survey-question-${i.id}`, name: "survey_question", maxlength: "500", dir: "auto", autocomplete: "off",
    placeholder: "How would you rate this conversation?" });
  question.value = i.survey_question || "";  // user text: a property, never markup
  const labels = [1, 2, 3, 4, 5].map((n) => {
    const input = h("input", { id: `survey-label-${n}-${i.id}`, name: `survey_labels.${n - 1}`, maxlength: "20", dir: "auto", autocomplete: "off",
      placeholder: `${n} ★`, class: "survey-label" });
    input.value = (i.survey_labels || [])[n - 1] || "";
    return field(`Rating ${n}`, input);
  });
  const form = h("form", { class: "form-grid survey-form", novalidate: true },
    field("Question", question, "Empty: asked in the ticket's language (English, French, Dutch, German, Spanish; English otherwise)."),
    h("fieldset", { class: "survey-labels" }, h("legend", {}, "Quick replies (ratings 1 to 5)"), labels,
      h("p", { class: "hint" }, "Five distinct labels of at most 20 characters, or all empty for 1 ★ .. 5 ★.")),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "small-button", id: `save-survey-${i.id}` }, "Save survey")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError(form, null);
    const given = [...form.querySelectorAll(".survey-label")].map((el) => el.value.trim());
    const body = { survey_question: question.value.trim() || null,
      survey_labels: given.every((v) => !v) ? null : given };
    try {
      await patch(`/api/integrations/${encodeURIComponent(i.id)}`, body);
      toast("Satisfaction survey saved.");
      await saved();
    } catch (err) {
      formError(form, err);
    }
  });
  const custom = i.survey_question || i.survey_labels;
  return h("details", { class: "edit-box survey-box" },
    h("summary", {}, `Satisfaction survey (${custom ? "custom" : "defaults"})`), form);
}
