// The console's live parts: the live calls table and a call's transcript, fed by SSE.
// Untrusted text (caller names, transcripts) is only ever set with textContent.
"use strict";

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
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

function liveCalls(table) {
  const body = table.querySelector("tbody");
  const empty = document.getElementById("no-calls");
  stream(table.dataset.stream, { calls: (message) => {
    const calls = JSON.parse(message.data);
    body.replaceChildren();
    for (const call of calls) {
      const row = document.createElement("tr");
      row.dataset.callId = call.call_id;
      const link = document.createElement("a");
      link.href = table.dataset.callUrl.replace("CALL_ID", encodeURIComponent(call.call_id));
      link.textContent = call.call_id;
      cell(row, "").appendChild(link);
      cell(row, `${call.caller_name || ""} ${call.caller_number || ""}`.trim());
      cell(row, call.dialled_number || "");
      cell(row, call.route || "");
      cell(row, `${call.duration}s`);
      cell(row, call.status);
      cell(row, call.last_line || "");
      body.appendChild(row);
    }
    if (empty) empty.hidden = calls.length > 0;
  } });
}

function callPage(list) {
  if (list.dataset.live !== "yes") return;
  const seen = new Set([...list.querySelectorAll("li")].map((li) => li.dataset.seq));
  const handlers = {};
  const item = (parent, text) => {
    const li = document.createElement("li");
    li.textContent = text;
    parent.appendChild(li);
    return li;
  };
  handlers.transcript = (message) => {
    const line = JSON.parse(message.data).data;
    const seq = String(line.seq);
    if (seen.has(seq)) return;
    seen.add(seq);
    const li = document.createElement("li");
    li.dataset.seq = seq;
    const who = document.createElement("b");
    who.textContent = line.speaker;
    li.append(who, " ", line.text || "");
    list.appendChild(li);
  };
  for (const kind of ["tool", "mcp_call", "mcp_approval", "mcp_list_tools_failed"]) {
    handlers[kind] = (message) => {
      const event = JSON.parse(message.data);
      item(document.getElementById("tools"), `${event.kind}: ${JSON.stringify(event.data)}`);
    };
  }
  for (const kind of ["escalation", "transferred", "refer_failed", "transfer_failed"]) {
    handlers[kind] = (message) => {
      const event = JSON.parse(message.data);
      item(document.getElementById("escalations"), `${event.kind}: ${JSON.stringify(event.data)}`);
    };
  }
  handlers.end = (message) => {
    document.getElementById("call-status").textContent = JSON.parse(message.data).status;
    for (const actions of document.querySelectorAll(".actions")) actions.remove();
    return "done";
  };
  stream(list.dataset.stream, handlers);
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("live-calls");
  if (table) liveCalls(table);
  const transcript = document.getElementById("transcript");
  if (transcript) callPage(transcript);
});
