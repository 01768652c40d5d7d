// byok console: progressive enhancement only; every page works without it.
(function () {
  "use strict";

  // Show only the panels of the chosen mode: Azure's credential, AWS's
  // access (radio buttons named NAME, panels marked data-NAME).
  ["credential", "access"].forEach(function (name) {
    function sync() {
      var chosen = document.querySelector('input[name="' + name + '"]:checked');
      var mode = chosen ? chosen.value : "";
      document.querySelectorAll(".panel[data-" + name + "]").forEach(function (p) {
        p.hidden = p.getAttribute("data-" + name).split(" ").indexOf(mode) < 0;
      });
    }
    document.querySelectorAll('input[name="' + name + '"]').forEach(function (r) {
      r.addEventListener("change", sync);
    });
    sync();
  });

  // Copy buttons (hidden without this script): copy the text of the
  // element they name, and say whether it worked.
  document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
    var label = b.textContent;
    b.hidden = false;
    b.addEventListener("click", function () {
      var el = document.getElementById(b.getAttribute("data-copy"));
      var done = function (text) {
        b.textContent = text;
        setTimeout(function () { b.textContent = label; }, 2000);
      };
      if (!el || !navigator.clipboard) {
        done("Select the text to copy it");
        return;
      }
      navigator.clipboard.writeText(el.textContent).then(function () { done("Copied"); }, function () { done("Select the text to copy it"); });
    });
  });

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
