// patchflow's one script, served by the pages app (no inline script, no external URL: CSP 'self').
// 1. Follow Airflow's light/dark choice (same origin as the Airflow UI around the iframe).
// 2. While a run is live, fetch the board part again every few seconds and swap it in.
// 3. The re-run button: a POST to Airflow's REST API with the person's own session; Airflow
//    decides whether this person may trigger the DAG.
(function () {
  "use strict";
  try {
    var theme = window.localStorage.getItem("theme");
    if (theme === "dark" || theme === "light") {
      document.documentElement.setAttribute("data-theme", theme);
    }
  } catch (ignored) { /* storage not available: the system's colour scheme applies */ }

  function schedule(board, delay) {
    if (board.getAttribute("data-live") !== "true") { return; }
    window.setTimeout(function () { refresh(board); }, delay || Number(board.getAttribute("data-refresh-ms")) || 5000);
  }

  function refresh(board) {
    window.fetch(board.getAttribute("data-part-url"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("board");
        if (!fresh) { throw new Error("no board in the answer"); }
        fresh.setAttribute("data-refreshed", String(Number(board.getAttribute("data-refreshed") || 0) + 1));
        board.replaceWith(fresh);
        schedule(fresh);
      })
      .catch(function (error) {
        var note = board.querySelector(".refresh");
        if (note) { note.textContent = "Refresh failed (" + error.message + "); trying again."; }
        schedule(board, 15000);
      });
  }

  function trigger(button) {
    var result = button.parentNode.querySelector(".trigger-result");
    button.disabled = true;
    result.textContent = " Triggering…";
    window.fetch(button.getAttribute("data-trigger-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: button.getAttribute("data-body")
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, status: response.status, body: body }; });
    }).then(function (answer) {
      if (!answer.ok) {
        button.disabled = false;
        result.textContent = " Airflow refused (" + answer.status + "): " + JSON.stringify(answer.body.detail || answer.body);
        return;
      }
      var runId = answer.body.dag_run_id;
      result.textContent = " Triggered ";
      var link = document.createElement("a");
      link.href = button.getAttribute("data-board-url") + encodeURIComponent(runId);
      link.textContent = runId;
      result.appendChild(link);
    }).catch(function (error) {
      button.disabled = false;
      result.textContent = " Could not reach Airflow: " + error.message;
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-trigger-url]");
    if (button) { trigger(button); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var board = document.getElementById("board");
    if (board) { schedule(board); }
  });
}());
