// byok console: progressive enhancement only; every page works without it.
(function () {
  "use strict";

  // Show only the credential panels of the chosen sign-in mode.
  function syncCredential() {
    var chosen = document.querySelector('input[name="credential"]:checked');
    var mode = chosen ? chosen.value : "";
    document.querySelectorAll(".panel[data-credential]").forEach(function (p) {
      p.hidden = p.getAttribute("data-credential").split(" ").indexOf(mode) < 0;
    });
  }
  document.querySelectorAll('input[name="credential"]').forEach(function (r) {
    r.addEventListener("change", syncCredential);
  });
  syncCredential();

  // Long-running forms say that they are working.
  document.querySelectorAll("form[data-busy]").forEach(function (f) {
    f.addEventListener("submit", function () {
      var b = f.querySelector("button[type=submit]");
      if (b) {
        b.disabled = true;
        b.textContent = f.getAttribute("data-busy");
      }
      f.setAttribute("aria-busy", "true");
    });
  });

  // Follow a running job's progress.
  document.querySelectorAll(".job[data-job-url]").forEach(function (el) {
    if (el.getAttribute("data-finished") === "true") return;
    var url = el.getAttribute("data-job-url");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          if (j.error) return;
          var bar = el.querySelector("#job-progress");
          bar.value = j.percent;
          bar.textContent = j.percent + "%";
          el.querySelector("#job-percent").textContent = j.percent + "%";
          el.querySelector("#job-count").textContent = j.count;
          var st = el.querySelector("#job-state");
          st.textContent = j.state;
          st.className = "badge " + (j.state === "done" ? "ok" : j.state === "failed" ? "bad" : "warn");
          if (j.finished) {
            el.setAttribute("data-finished", "true");
          } else {
            setTimeout(poll, 1000);
          }
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    poll();
  });
})();
