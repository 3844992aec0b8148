/* LTI client-side postMessage storage (1EdTech "Platform Storage"): used when the browser does not keep the
   tool's cookie inside the LMS frame. Messages go only to the platform's storage frame, with the origin of the
   platform's authorization endpoint as target origin (never "*"), and only answers from that frame and that
   origin are read. Canvas's mobile apps pass lti_storage_target but never answer: every call has a timeout and
   the caller falls back. */
(function (global) {
  "use strict";
  var TIMEOUT_MS = 1500;

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
      var timer = setTimeout(function () { global.removeEventListener("message", onMessage); reject(new Error("timeout")); }, TIMEOUT_MS);
      function onMessage(event) {
        if (event.origin !== origin || event.source !== frame) return;  // only the platform's own answer counts
        var data = event.data;
        if (!data || typeof data !== "object" || data.message_id !== id) return;
        clearTimeout(timer);
        global.removeEventListener("message", onMessage);
        if (data.error) reject(new Error(data.error.code || "error")); else resolve(data);
      }
      global.addEventListener("message", onMessage);
      frame.postMessage(message, origin);
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
