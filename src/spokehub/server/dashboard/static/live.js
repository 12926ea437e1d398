// Live refresh for the dashboard. Pages work without it; with it, an element marked
// data-live="URL" data-stream="SSE URL" is re-fetched from URL whenever the stream says
// "change". The stream carries no data: the server renders the fragment, escaping included.
(function () {
  "use strict";

  function withQuery(url) {
    // The runs list keeps its filters: the fragment gets the page's own query string.
    var query = window.location.search;
    if (!query) return url;
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + query.slice(1);
  }

  function busy(element) {
    // Do not swap a fragment out from under someone typing in it, nor throw away what they
    // typed and left (a comment in the approvals inbox).
    var active = document.activeElement;
    if (active && element.contains(active) && /INPUT|TEXTAREA|SELECT/.test(active.tagName)) {
      return true;
    }
    var fields = element.querySelectorAll("input:not([type=hidden]), textarea");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value) return true;
    }
    return false;
  }

  function keepOpen(oldElement, newElement) {
    var before = oldElement.querySelectorAll("details");
    var after = newElement.querySelectorAll("details");
    for (var i = 0; i < before.length && i < after.length; i++) {
      after[i].open = before[i].open;
    }
  }

  function refresh(element) {
    if (busy(element)) return Promise.resolve();
    return fetch(withQuery(element.dataset.live), {
      credentials: "same-origin",
      headers: { "Accept": "text/html" },
    }).then(function (response) {
      if (response.redirected || !response.ok) return;
      return response.text().then(function (html) {
        if (busy(element)) return;  // they started typing while the fragment was on its way
        var holder = document.createElement("div");
        holder.innerHTML = html;
        keepOpen(element, holder);
        element.replaceChildren.apply(element, Array.from(holder.childNodes));
        afterRefresh(element);
      });
    }).catch(function () { /* the next change will try again */ });
  }

  function afterRefresh(element) {
    // On a run page the action forms live outside the fragment: when what the run waits
    // for changes (an approval decided, the run finished), reload so they match.
    var head = element.querySelector(".run-head");
    var actions = document.getElementById("actions");
    if (!head || !actions || busy(actions)) return;
    var finished = /^(completed|failed|cancelled)$/.test(head.dataset.status);
    if (finished || head.dataset.waits !== actions.dataset.waits) {
      window.location.reload();
    }
  }

  function watch(element) {
    if (!window.EventSource) return;
    var pending = false;
    var source = new EventSource(element.dataset.stream);
    source.addEventListener("change", function () {
      if (pending) return;
      pending = true;
      // Changes come in bursts (several events per step): coalesce them.
      window.setTimeout(function () {
        refresh(element).then(function () { pending = false; });
      }, 150);
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function liveFilters() {
    // Filter changes apply at once; the submit button stays for pages without script.
    var form = document.querySelector("form[data-live-form]");
    if (!form) return;
    form.addEventListener("change", function () { form.requestSubmit(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live][data-stream]").forEach(watch);
    liveFilters();
  });
})();
