/* LTI client-side postMessage storage (1EdTech "Platform Storage"): used when the browser does not keep the
   tool's cookie inside the LMS frame. Messages go only to the platform's storage frame, with the origin of the
   platform's authorization endpoint as target origin (never "*"), and only answers from that frame and that
   origin are read. Canvas's mobile apps pass lti_storage_target but never answer: every call has a timeout and
   the caller falls back. A message sent before the platform's storage frame has loaded is lost, so each one is
   sent again every RESEND_MS until an answer or the timeout (put and get are idempotent). */
(function (global) {
  "use strict";
  var TIMEOUT_MS = 2500;
  var RESEND_MS = 500;

  function storageFrame(storageTarget) {
    var parent = global.opener || global.parent;
    if (!parent || parent === global) return null;
    if (!storageTarget || storageTarget === "_parent") return parent;
    try {
      return parent.frames[storageTarget] || null;
    } catch (e) { return null; /* cross-origin frames lookup can throw in old browsers */ }
  }

  function ask(frame, origin, message) {
    return new Promise(function (resolve, reject) {
      if (!frame) { reject(new Error("no platform storage frame")); return; }
      var id = "m" + Math.random().toString(36).slice(2);
      message.message_id = id;
      function send() { frame.postMessage(message, origin); }
      var resend = setInterval(send, RESEND_MS);
      var timer = setTimeout(function () { stop(); reject(new Error("timeout")); }, TIMEOUT_MS);
      function stop() { clearTimeout(timer); clearInterval(resend); global.removeEventListener("message", onMessage); }
      function onMessage(event) {
        if (event.origin !== origin || event.source !== frame) return;  // only the platform's own answer counts
        var data = event.data;
        if (!data || typeof data !== "object" || data.message_id !== id) return;
        stop();
        if (data.error) reject(new Error(data.error.code || "error")); else resolve(data);
      }
      global.addEventListener("message", onMessage);
      send();
    });
  }

  global.ltiStorage = {
    put: function (storageTarget, origin, pairs) {
      var frame = storageFrame(storageTarget);
      return Promise.all(Object.keys(pairs).map(function (key) {
        return ask(frame, origin, { subject: "lti.put_data", key: key, value: pairs[key] });
      }));
    },
    get: function (storageTarget, origin, key) {
      return ask(storageFrame(storageTarget), origin, { subject: "lti.get_data", key: key })
        .then(function (answer) { return answer.value; });
    }
  };
})(window);
