/* The launch arrived without the tool's cookie: read back, from the platform's storage in this browser, the proof
   the login kept there, and post it; the tool compares it. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("storage-check").textContent);
  var form = document.getElementById("verified");
  window.ltiStorage.get(config.storageTarget, config.platformOrigin, config.storageKey).then(function (proof) {
    if (typeof proof !== "string" || !proof) throw new Error("nothing stored");
    form.elements.lti_storage_proof.value = proof;
    form.submit();
  }).catch(function () {
    document.getElementById("failed").hidden = false;
    document.getElementById("status").textContent = "The launch could not be confirmed.";
  });
})();
