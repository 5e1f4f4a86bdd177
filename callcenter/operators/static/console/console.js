// The console's live parts: the live calls table and a call's transcript, fed by SSE.
// Untrusted text (caller names, transcripts) is only ever set with textContent.
"use strict";

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function liveCalls(table) {
  const body = table.querySelector("tbody");
  const empty = document.getElementById("no-calls");
  const source = new EventSource(table.dataset.stream);
  source.addEventListener("calls", (message) => {
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
  });
}

function callPage(list) {
  if (list.dataset.live !== "yes") return;
  const seen = new Set([...list.querySelectorAll("li")].map((li) => li.dataset.seq));
  const source = new EventSource(list.dataset.stream);
  const item = (parent, text) => {
    const li = document.createElement("li");
    li.textContent = text;
    parent.appendChild(li);
    return li;
  };
  source.addEventListener("transcript", (message) => {
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
  });
  for (const kind of ["tool", "mcp_call", "mcp_approval"]) {
    source.addEventListener(kind, (message) => {
      const event = JSON.parse(message.data);
      item(document.getElementById("tools"), `${event.kind}: ${JSON.stringify(event.data)}`);
    });
  }
  for (const kind of ["escalation", "transferred", "refer_failed", "transfer_failed"]) {
    source.addEventListener(kind, (message) => {
      const event = JSON.parse(message.data);
      item(document.getElementById("escalations"), `${event.kind}: ${JSON.stringify(event.data)}`);
    });
  }
  source.addEventListener("end", (message) => {
    document.getElementById("call-status").textContent = JSON.parse(message.data).status;
    for (const actions of document.querySelectorAll(".actions")) actions.remove();
    source.close();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("live-calls");
  if (table) liveCalls(table);
  const transcript = document.getElementById("transcript");
  if (transcript) callPage(transcript);
});
