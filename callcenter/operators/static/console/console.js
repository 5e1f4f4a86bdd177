// The console's live parts: the dashboard, a call's timeline, and times in the operator's zone.
// Untrusted text (caller names, transcripts, tool arguments) is only ever set with textContent.
"use strict";

// The server formats times in the zone the tz cookie names (UTC until it is set); when the
// browser's zone is another, it is remembered and the page's times are shown in it now.
function operatorZone() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) return;
  const known = document.cookie.split("; ").find((c) => c.startsWith("tz="));
  if (known && decodeURIComponent(known.slice(3)) === zone) return;
  document.cookie = `tz=${encodeURIComponent(zone)}; path=/console; SameSite=Strict; max-age=31536000`;
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  for (const time of document.querySelectorAll("time[datetime]")) {
    time.textContent = format.format(new Date(time.getAttribute("datetime")));
  }
}

function cell(row, text, label) {
  const td = document.createElement("td");
  td.textContent = text;
  td.dataset.label = label;
  row.appendChild(td);
  return td;
}

// Open an SSE stream with a handler per event name. A stream the server refused (503: its
// worker already serves its cap of streams) is closed by the browser for good, so it is
// opened again a little later, after the last event seen. A handler returning "done" ends it.
const RETRY_MS = 5000;

function stream(url, handlers) {
  let after = null;
  let done = false;
  const open = () => {
    const target = new URL(url, window.location.href);
    if (after !== null) target.searchParams.set("after", after);
    const source = new EventSource(target);
    for (const [kind, handle] of Object.entries(handlers)) {
      source.addEventListener(kind, (message) => {
        if (message.lastEventId) after = message.lastEventId;
        if (handle(message) === "done") {
          done = true;
          source.close();
        }
      });
    }
    source.addEventListener("error", () => {
      if (!done && source.readyState === EventSource.CLOSED) setTimeout(open, RETRY_MS);
    });
  };
  open();
}

function showCalls(table, calls) {
  const body = table.querySelector("tbody");
  const empty = document.getElementById("no-calls");
  body.replaceChildren();
  for (const call of calls) {
    const row = document.createElement("tr");
    row.dataset.callId = call.call_id;
    const link = document.createElement("a");
    link.href = table.dataset.callUrl.replace("CALL_ID", encodeURIComponent(call.call_id));
    link.textContent = call.call_id;
    cell(row, "", "Call").appendChild(link);
    cell(row, `${call.caller_name || ""} ${call.caller_number || ""}`.trim(), "Caller");
    cell(row, call.dialled_number || "", "Dialled");
    cell(row, call.route || "", "Route");
    cell(row, call.duration, "For");
    cell(row, call.status, "State");
    cell(row, call.last_line || "", "Last line said");
    body.appendChild(row);
  }
  if (empty) empty.hidden = calls.length > 0;
}

function showStats(view) {
  for (const [id, text] of Object.entries(view.figures)) {
    const figure = document.getElementById(id);
    if (figure) figure.textContent = text;
  }
  const outcomes = document.querySelector("#outcomes tbody");
  outcomes.replaceChildren();
  for (const row of view.outcomes) {
    const tr = document.createElement("tr");
    tr.appendChild(document.createElement("td")).textContent = row.words;
    const count = tr.appendChild(document.createElement("td"));
    count.textContent = row.calls;
    count.className = "num";
    outcomes.appendChild(tr);
  }
  document.getElementById("no-outcomes").hidden = view.outcomes.length > 0;
  view.bars.forEach((bar, n) => {
    const rect = document.querySelector(`#per-hour rect[data-n="${n}"]`);
    if (!rect) return;
    rect.setAttribute("y", bar.y);
    rect.setAttribute("height", bar.height);
    rect.querySelector("title").textContent = `${bar.hour}: ${bar.calls} calls`;
  });
}

function dashboard(table) {
  stream(table.dataset.stream, {
    calls: (message) => showCalls(table, JSON.parse(message.data)),
    stats: (message) => showStats(JSON.parse(message.data)),
  });
}

// -- a call's timeline ---------------------------------------------------------------------

function offsetFrom(start, at) {
  const seconds = Math.max(Math.floor((new Date(at) - start) / 1000), 0);
  const minutes = Math.floor(seconds / 60);
  const pad = (n) => String(n).padStart(2, "0");
  const hours = Math.floor(minutes / 60);
  return hours ? `+${hours}:${pad(minutes % 60)}:${pad(seconds % 60)}` : `+${minutes}:${pad(seconds % 60)}`;
}

function entry(list, event, row, parts) {
  const li = document.createElement("li");
  li.className = `entry entry-${row}`;
  li.dataset.kind = event.kind;
  const when = li.appendChild(document.createElement("span"));
  when.className = "offset";
  when.textContent = offsetFrom(new Date(list.dataset.start), event.at);
  const what = li.appendChild(document.createElement("span"));
  what.className = "what";
  for (const part of parts) what.append(part);
  list.appendChild(li);
  return li;
}

function bold(text) {
  const b = document.createElement("b");
  b.textContent = text;
  return b;
}

function pretty(value) {
  if (typeof value === "string") {
    try { value = JSON.parse(value); } catch { return value; }
  }
  return JSON.stringify(value, null, 2);
}

function folded(title, value) {
  const details = document.createElement("details");
  details.appendChild(document.createElement("summary")).textContent = title;
  details.appendChild(document.createElement("pre")).textContent = pretty(value);
  return details;
}

const DESCRIBE = {
  tool: (d) => {
    const parts = [bold("Tool"), " ", d.name || ""];
    if (d.duration_ms !== undefined) parts.push(` ${d.duration_ms} ms`);
    if (d.ok === false) parts.push(` failed${typeof d.error === "string" ? ": " + d.error : ""}`);
    if (d.arguments !== undefined) parts.push(folded("arguments", d.arguments));
    if (d.output !== undefined && d.output !== null) parts.push(folded("result", d.output));
    return ["tool", parts];
  },
  dtmf: (d) => ["key", [bold("Key pressed"), ` ${d.key}`]],
  escalation: (d) => ["escalation", [bold("Escalation"), ` by ${d.trigger} to ${d.target}, ticket ${d.ticket}`]],
  transferred: (d) => ["transfer", [bold("Transferred"), ` to ${d.target}`]],
  refer_failed: (d) => ["transfer", [bold("Transfer attempt failed"), ` to ${d.target} (SIP ${d.status})`]],
  transfer_unanswered: (d) => ["transfer", [bold("Transfer not answered"), ` at ${d.target}`]],
  transfer_failed: () => ["transfer", [bold("No target took the call")]],
  ending: (d) => ["ending", [bold("Ending"), ` (${d.reason}): ${d.outcome}`]],
  operator_instruction: (d) => ["operator", [bold(d.operator), ` instructed the agent: “${d.text}”`]],
};
DESCRIBE.mcp_call = DESCRIBE.tool;
DESCRIBE.mcp_approval = DESCRIBE.tool;
DESCRIBE.mcp_list_tools_failed = () => ["tool", [bold("MCP tools could not be listed")]];

function callPage(list) {
  if (list.dataset.live !== "yes") return;
  const seen = new Set([...list.querySelectorAll("li[data-seq]")].map((li) => li.dataset.seq));
  const handlers = {};
  handlers.transcript = (message) => {
    const event = JSON.parse(message.data);
    const line = event.data;
    const seq = String(line.seq);
    if (seen.has(seq)) return;
    seen.add(seq);
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = line.text || "";
    const who = bold(line.speaker);
    who.className = "speaker";
    entry(list, event, "line", [who, " ", text]).dataset.seq = seq;
  };
  for (const [kind, describe] of Object.entries(DESCRIBE)) {
    handlers[kind] = (message) => {
      const event = JSON.parse(message.data);
      const [row, parts] = describe(event.data);
      entry(list, event, row, parts);
    };
  }
  handlers.end = (message) => {
    const end = JSON.parse(message.data);
    const words = JSON.parse(list.dataset.outcomeWords);
    document.getElementById("call-status").textContent = end.status;
    document.getElementById("outcome").textContent = words[end.outcome] || end.outcome || "";
    document.getElementById("duration").textContent = offsetFrom(new Date(list.dataset.start), new Date()).slice(1);
    document.getElementById("ended").textContent = new Date().toLocaleString();
    for (const actions of document.querySelectorAll(".actions")) actions.remove();
    return "done";
  };
  stream(list.dataset.stream, handlers);
}

document.addEventListener("DOMContentLoaded", () => {
  operatorZone();
  const table = document.getElementById("live-calls");
  if (table) dashboard(table);
  const timeline = document.getElementById("timeline");
  if (timeline) callPage(timeline);
});
