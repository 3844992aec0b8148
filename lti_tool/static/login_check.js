/* The login's first step inside an LMS frame: go on to the platform only once this browser is known to keep the
   tool's cookie here (or the platform's storage holds the login), because some platforms (Moodle) spend their
   one-time login hint when the browser reaches them. Otherwise: ask for storage access (a button: it needs a
   click) or carry the untouched login request into a new window, where the cookie is first-party. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("login-check").textContent);
  var status = document.getElementById("status");
  var outcome = document.getElementById("outcome");

  function go() { window.location.replace(config.authUrl); }

  function cookieKept(setAgain) {
    var options = { credentials: "include", cache: "no-store" };
    if (setAgain) {
      options.method = "POST";
      options.body = new URLSearchParams({ binding: config.binding });
    }
    return fetch(config.checkUrl, options).then(function (r) { return r.json(); })
      .then(function (answer) { return answer.kept === true; });
  }

  function offerWays() {
    status.textContent = "The tool cannot keep you signed in inside this page.";
    document.getElementById("blocked").hidden = false;
    var allow = document.getElementById("allow");
    if (config.secure && typeof document.requestStorageAccess === "function") {
      allow.hidden = false;
      allow.addEventListener("click", function () {
        document.requestStorageAccess()
          .then(function () { return cookieKept(true); })
          .then(function () { return cookieKept(false); })
          .then(function (kept) {
            if (kept) { outcome.textContent = "Thank you. Signing you in…"; go(); }
            else { outcome.textContent = "Your browser still keeps the tool's cookie out. Open the tool in a new window."; }
          }, function () {
            outcome.textContent = "Your browser did not allow it. Open the tool in a new window.";
          });
      });
    }
    document.getElementById("new-window").addEventListener("click", function () {
      outcome.textContent = "The tool opened in a new window. You can continue there.";
    });
  }

  cookieKept(false).then(function (kept) {
    if (kept) { go(); return; }
    if (!config.storageTarget || !window.ltiStorage) { offerWays(); return; }
    // The platform offers postMessage storage (Canvas): keep the login's proof there, then go on.
    var pairs = {};
    pairs[config.storageKey] = config.storageProof;
    window.ltiStorage.put(config.storageTarget, config.platformOrigin, pairs).then(go, offerWays);
  }, offerWays);
})();
