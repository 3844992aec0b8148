/* Post the launch again from the tool's own page: a browser sends the tool's cookie with it (a SameSite=Lax
   cookie is held back from a POST that comes from another site). Inside a frame where the tool was granted
   storage access, activate that grant first (no prompt once granted). */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("resubmit-config").textContent);
  var form = document.getElementById("resubmit");
  function submit() { form.submit(); }
  var framed = window.top !== window;
  if (framed && config.secure && typeof document.hasStorageAccess === "function") {
    document.hasStorageAccess().then(function (has) {
      return has ? null : document.requestStorageAccess();
    }).then(submit, submit);
  } else {
    submit();
  }
})();
