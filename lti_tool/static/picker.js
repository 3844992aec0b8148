// The deep-linking picker, made quicker to scan. Without this script every field is visible and the groups open
// and close by themselves (native <details>); with it, a workshop's fields appear once "Graded workshop" is
// ticked, the action bar says what is chosen, and a filter finds a module by its title.
(function () {
  "use strict";
  var form = document.getElementById("picker");
  if (!form) { return; }
  var choices = Array.prototype.slice.call(form.querySelectorAll("input[name=choice]"));
  var progress = form.querySelector("input[name=progress_column]");
  var summary = document.getElementById("chosen-summary");

  function showWorkshopFields() {
    form.querySelectorAll(".workshop-fields").forEach(function (fields) {
      var choice = form.querySelector('input[name=choice][value="' + fields.dataset.choice + '"]');
      // Fields with an error stay in sight, so the message is never hidden.
      fields.hidden = !(choice && choice.checked) && fields.dataset.errors !== "1";
    });
  }

  function describeChoices() {
    var chosen = choices.filter(function (c) { return c.checked; }).map(function (c) {
      return c.dataset.title + " (" + c.dataset.mode.toLowerCase() + ")";
    });
    if (progress && progress.checked) { chosen.push("the “" + progress.dataset.title + "” column"); }
    summary.textContent = chosen.length ? "Chosen: " + chosen.join(", ") : "Nothing chosen yet.";
    form.querySelectorAll(".picker-group").forEach(function (group) {
      var count = group.querySelectorAll("input[name=choice]:checked").length;
      var badge = group.querySelector(".group-chosen");
      badge.hidden = count === 0;
      badge.textContent = count + " chosen";
    });
  }

  form.addEventListener("change", function (event) {
    if (event.target.name === "choice" || event.target.name === "progress_column") {
      showWorkshopFields();
      describeChoices();
    }
  });

  var filterBox = form.querySelector(".picker-filter");
  var filter = document.getElementById("module-filter");
  var status = document.getElementById("filter-status");
  var remembered = null;  // which groups were open before a search opened them
  filterBox.hidden = false;
  filter.addEventListener("input", function () {
    var query = filter.value.trim().toLowerCase();
    var groups = form.querySelectorAll(".picker-group");
    if (query && remembered === null) {
      remembered = Array.prototype.map.call(groups, function (g) { return g.open; });
    }
    var shown = 0;
    groups.forEach(function (group, index) {
      var matches = 0;
      group.querySelectorAll("li.pick").forEach(function (item) {
        var match = !query || item.dataset.title.indexOf(query) !== -1;
        item.hidden = !match;
        if (match) { matches += 1; }
      });
      shown += matches;
      group.hidden = query !== "" && matches === 0;
      if (query) {
        group.open = matches > 0;
      } else if (remembered !== null) {  // back as it was, and open where something is chosen
        group.open = remembered[index] || group.querySelector("input[name=choice]:checked") !== null;
      }
    });
    if (!query) { remembered = null; }
    status.textContent = query ? (shown === 1 ? "1 module matches." : shown + " modules match.") : "";
  });

  showWorkshopFields();
  describeChoices();
}());
