/* LTI client-side postMessage storage (1EdTech "Client Side postMessages"): used when the browser blocks
   the tool's cookies inside the LMS iframe. Ask lti.capabilities first: Canvas's mobile apps pass
   lti_storage_target but never answer, so every call has a timeout and the caller falls back. */
(function (global) {
  "use strict";
  var TIMEOUT_MS = 1500;

  function targetFrame(storageTarget) {
    var parent = global.opener || global.parent;
    if (!parent || parent === global) return null;
    try {
      if (storageTarget && storageTarget !== "_parent" && parent.frames[storageTarget]) return parent.frames[storageTarget];
    } catch (e) { /* cross-origin frames lookup can throw in old browsers */ }
    return parent;
  }

  function ask(win, message) {
    return new Promise(function (resolve, reject) {
      if (!win) { reject(new Error("no platform window")); return; }
      var id = "m" + Math.random().toString(36).slice(2);
      message.message_id = id;
      var timer = setTimeout(function () { global.removeEventListener("message", onMessage); reject(new Error("timeout")); }, TIMEOUT_MS);
      function onMessage(event) {
        var data = event.data;
        if (!data || typeof data !== "object" || data.message_id !== id) return;
        clearTimeout(timer);
        global.removeEventListener("message", onMessage);
        if (data.error) reject(new Error(data.error.code || "error")); else resolve(data);
      }
      global.addEventListener("message", onMessage);
      win.postMessage(message, "*");
    });
  }

  function capable(storageTarget, subject) {
    var parent = global.opener || global.parent;
    return ask(parent, { subject: "lti.capabilities" }).then(function (answer) {
      var supported = (answer.supported_messages || []).filter(function (m) { return m.subject === subject; });
      if (!supported.length) throw new Error("unsupported");
      var frameName = supported[0].frame || storageTarget;
      return targetFrame(frameName);
    });
  }

  global.ltiStorage = {
    put: function (storageTarget, pairs) {
      return capable(storageTarget, "lti.put_data").then(function (frame) {
        return Promise.all(Object.keys(pairs).map(function (key) {
          return ask(frame, { subject: "lti.put_data", key: key, value: pairs[key] });
        }));
      });
    },
    get: function (storageTarget, key) {
      return capable(storageTarget, "lti.get_data").then(function (frame) {
        return ask(frame, { subject: "lti.get_data", key: key }).then(function (answer) { return answer.value; });
      });
    }
  };
})(window);
