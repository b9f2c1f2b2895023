// pointsman's status page: keeps <main> current without a reload. Every 2 s it asks the
// server for the fragment newer than the one shown (204: nothing new) and swaps it in. The
// fragment is rendered and escaped by the server; this script adds no markup of its own.
(function () {
  "use strict";
  var main = document.getElementById("status");
  var live = document.getElementById("live");
  var generation = main.getAttribute("data-generation");
  function show(text, ok) {
    live.textContent = text;
    live.className = ok ? "live" : "live offline";
  }
  function poll() {
    fetch("fragment?since=" + encodeURIComponent(generation), { cache: "no-store" })
      .then(function (response) {
        if (response.status === 204) {
          show("live", true);
          return;
        }
        if (response.status !== 200) {
          throw new Error("HTTP " + response.status);
        }
        var next = response.headers.get("X-Pointsman-Generation");
        return response.text().then(function (html) {
          main.innerHTML = html;
          if (next) {
            generation = next;
            main.setAttribute("data-generation", next);
          }
          show("live", true);
        });
      })
      .catch(function (e) {
        show("pointsman unreachable (" + e.message + "); retrying", false);
      })
      .then(function () {
        setTimeout(poll, 2000);
      });
  }
  setTimeout(poll, 2000);
})();
