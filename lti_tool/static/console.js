// Copy buttons of the program console: shown only where this script runs; each copies the text of the element
// its data-copy names and says so in the page's status line (read out by screen readers).
(function () {
  "use strict";
  var status = document.getElementById("copy-status");
  function say(text) { if (status) { status.textContent = text; } }
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Over plain http (development) or in a frame without clipboard permission: select and copy.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "absolute";
      area.style.left = "-9999px";
      document.body.appendChild(area);
      area.select();
      var done = false;
      try { done = document.execCommand("copy"); } catch (e) { done = false; }
      document.body.removeChild(area);
      if (done) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      copyText(source.textContent.trim()).then(function () {
        say("Copied: " + source.textContent.trim());
        button.textContent = "Copied";
      }, function () {
        say("The browser did not allow copying here: select the address and copy it by hand.");
      });
    });
  });
  var result = document.getElementById("check-result");
  if (result) { result.focus(); }
})();
