// Dynamic Registration pages: tell the LMS that opened them (in a frame or a popup) that the admin is done, so it
// closes the registration and shows its own summary (LTI Dynamic Registration's org.imsglobal.lti.close).
(function () {
  "use strict";
  function closeRegistration() {
    var target = window.opener || (window.parent !== window ? window.parent : null);
    if (target) {
      target.postMessage({ subject: "org.imsglobal.lti.close" }, "*");
    }
  }
  var buttons = document.querySelectorAll("[data-lti-close]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", closeRegistration);
  }
}());
