// TechServ Portal: toasts for the result of htmx actions. No dependencies, no inline handlers
// (the Content-Security-Policy forbids them), so everything is wired here by event listeners.
(function () {
  "use strict";

  var TOAST_MS = 5000;
  var MAX_VISIBLE = 2; // more would cover the page's side panel
  var LEVELS = { success: "success", error: "error", info: "info" };

  function region() {
    return document.getElementById("toasts");
  }

  function dismiss(toast) {
    if (!toast || toast.classList.contains("toast--leaving")) return;
    toast.classList.add("toast--leaving");
    // transitionend does not fire with reduced motion or when hidden; remove regardless.
    window.setTimeout(function () { toast.remove(); }, 350);
  }

  // Fade after TOAST_MS, but not while the pointer or keyboard focus is on the toast.
  function scheduleDismiss(toast) {
    var timer = null;
    function start() { timer = window.setTimeout(function () { dismiss(toast); }, TOAST_MS); }
    function stop() { window.clearTimeout(timer); }
    toast.addEventListener("mouseenter", stop);
    toast.addEventListener("mouseleave", start);
    toast.addEventListener("focusin", stop);
    toast.addEventListener("focusout", start);
    start();
  }

  function showToast(message, level) {
    var host = region();
    if (!host || !message) return;
    level = LEVELS[level] || "info";

    var toast = document.createElement("div");
    toast.className = "toast toast--" + level;
    if (level === "error") toast.setAttribute("role", "alert");

    var text = document.createElement("p");
    text.className = "toast__message";
    text.textContent = String(message);

    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast__close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "\u00d7";

    toast.appendChild(text);
    toast.appendChild(close);
    host.insertBefore(toast, host.firstChild); // newest first
    scheduleDismiss(toast);
    keepFew(host);
  }

  // At most MAX_VISIBLE toasts at once: the oldest leave first.
  function keepFew(host) {
    var live = host.querySelectorAll(".toast:not(.toast--leaving)");
    for (var i = MAX_VISIBLE; i < live.length; i++) dismiss(live[i]);
  }

  // Dismiss buttons, for toasts made here and for flashed ones rendered by the server.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".toast__close");
    if (button) dismiss(button.closest(".toast"));
  });

  // A refusal the page already says beside its field (or in a banner) needs no toast on top,
  // where it would cover that very field on a phone.
  function saidInThePage(message) {
    var text = String(message || "").trim();
    return Array.prototype.some.call(document.querySelectorAll(".field__error, .banner[role=alert]"), function (el) {
      return el.textContent.trim() === text;
    });
  }

  // The server answers an htmx action with `HX-Trigger: {"showToast": {"message": ..., "level": ...}}`,
  // which fires before the answer is swapped in: an error waits for the swap, then checks the page.
  document.addEventListener("showToast", function (event) {
    var detail = event.detail || {};
    var message = detail.message || detail.value;
    if (detail.level !== "error") {
      showToast(message, detail.level);
      return;
    }
    var done = false;
    function decide() {
      if (done) return;
      done = true;
      document.removeEventListener("htmx:afterSettle", decide);
      if (!saidInThePage(message)) showToast(message, "error");
    }
    document.addEventListener("htmx:afterSettle", decide);
    window.setTimeout(decide, 400); // an answer that is not swapped in settles nothing
  });

  // A failed request that the server did not explain with its own toast still says something.
  document.addEventListener("htmx:afterRequest", function (event) {
    var detail = event.detail || {};
    if (!detail.failed) return;
    var xhr = detail.xhr;
    var trigger = xhr && xhr.getResponseHeader ? xhr.getResponseHeader("HX-Trigger") || "" : "";
    if (trigger.indexOf("showToast") !== -1) return;
    if (!xhr || xhr.status === 0) return; // network failures are reported below
    if (xhr.status === 403) {
      showToast("You may not do that. If you think you should, ask your administrator.", "error");
    } else if (xhr.status === 404) {
      showToast("That item no longer exists. Reload the page to see the current state.", "error");
    } else if (xhr.status === 413) {
      var elt = detail.elt;
      if (elt && elt.querySelector && elt.querySelector("input[type=file][data-max-bytes]")) return; // said beside the field
      showToast("The upload is too large: attach at most 5 files of 10 MB each.", "error");
    } else if (xhr.status === 409) {
      showToast("Someone changed this in the meantime. Reload the page and try again.", "error");
    } else {
      showToast("Something went wrong (error " + xhr.status + "). Try again in a minute.", "error");
    }
  });

  function unreachable() {
    showToast("Could not reach the server. Check your connection and try again.", "error");
  }
  document.addEventListener("htmx:sendError", unreachable);
  document.addEventListener("htmx:timeout", unreachable);

  // Flashed messages arrive in the page; let them fade like the others.
  function initExisting() {
    var host = region();
    if (!host) return;
    Array.prototype.forEach.call(host.querySelectorAll(".toast"), scheduleDismiss);
    keepFew(host);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initExisting);
  } else {
    initExisting();
  }

  window.portal = { showToast: showToast };
})();

// The queue refreshes itself every 30 s; not while someone is choosing tickets for a bulk
// change or typing in the list (that would throw their selection away).
(function () {
  "use strict";
  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail && event.detail.elt;
    if (!source || source.getAttribute("data-poll") !== "queue") return;
    var busy = source.querySelector("input[name=ticket_ids]:checked") ||
      (document.activeElement && source.contains(document.activeElement) && document.activeElement.tagName !== "A");
    if (busy) event.preventDefault();
  });
})();

// A filter's customer search box (staff/_customer_filter.html) only refills its list: leaving it is
// not a change of the filters, so its change event stops before the filter form refreshes the results.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    if (event.target && event.target.hasAttribute && event.target.hasAttribute("data-picker-search")) {
      event.stopPropagation();
    }
  }, true);
})();

// Attachments: say at once, beside the file field, when a file is too big or there are too many
// (the server checks again), and keep the form from being sent until that is fixed, so what was
// typed stays on the page. Also show the upload's progress on forms that htmx sends.
(function () {
  "use strict";
  var SELECTOR = "input[type=file][data-max-bytes]";

  function problemOf(input) {
    var maxBytes = parseInt(input.getAttribute("data-max-bytes"), 10);
    var maxFiles = parseInt(input.getAttribute("data-max-files"), 10);
    var megabytes = Math.round(maxBytes / (1024 * 1024));
    if (input.files.length > maxFiles) return "Attach at most " + maxFiles + " files at once.";
    var big = Array.prototype.filter.call(input.files, function (file) { return file.size > maxBytes; });
    if (!big.length) return "";
    var names = big.map(function (file) { return file.name; }).join(", ");
    return names + (big.length === 1 ? " is" : " are") + " larger than " + megabytes +
      " MB. Choose a smaller file (a ZIP of it, or a part), or remove the files.";
  }

  function describedBy(input, id, on) {
    var ids = (input.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (x) { return x && x !== id; });
    if (on) ids.push(id);
    if (ids.length) input.setAttribute("aria-describedby", ids.join(" ")); else input.removeAttribute("aria-describedby");
  }

  // The message stays beside the field (role=alert, tied to the input) until the files are fixed.
  function show(input, message) {
    var field = input.closest(".field") || input.parentNode;
    var id = input.id + "-error";
    var error = document.getElementById(id);
    var clear = field.querySelector("[data-clear-files]");
    if (!message) {
      if (error) error.remove();
      if (clear) clear.remove();
      input.removeAttribute("aria-invalid");
      describedBy(input, id, false);
      field.classList.remove("field--invalid");
      return;
    }
    if (!error) {
      error = document.createElement("p");
      error.className = "field__error";
      error.id = id;
      error.setAttribute("role", "alert");
      var progress = field.querySelector(".upload-progress");
      field.insertBefore(error, progress);
    }
    error.textContent = message;
    if (!clear) {
      clear = document.createElement("button");
      clear.type = "button";
      clear.className = "btn btn--small btn--secondary field__clear";
      clear.setAttribute("data-clear-files", "");
      clear.textContent = "Remove the chosen files";
      field.insertBefore(clear, error.nextSibling);
    }
    input.setAttribute("aria-invalid", "true");
    describedBy(input, id, true);
    field.classList.add("field--invalid");
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input.matches && input.matches(SELECTOR)) show(input, problemOf(input));
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-clear-files]");
    if (!button) return;
    var input = (button.closest(".field") || document).querySelector(SELECTOR);
    if (!input) return;
    input.value = "";
    show(input, "");
    input.focus();
  });

  // Capture phase: before htmx (which listens on the form) sends anything.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.querySelectorAll) return;
    var first = null;
    Array.prototype.forEach.call(form.querySelectorAll(SELECTOR), function (input) {
      var problem = problemOf(input);
      if (problem) {
        show(input, problem);
        first = first || input;
      }
    });
    if (first) {
      event.preventDefault();
      event.stopPropagation();
      first.focus();
    }
  }, true);

  // The server refused an upload that got past this check (413): the same place says so.
  document.addEventListener("htmx:afterRequest", function (event) {
    var detail = event.detail || {};
    var form = detail.elt;
    if (!detail.xhr || detail.xhr.status !== 413 || !form || !form.querySelector) return;
    var input = form.querySelector(SELECTOR);
    if (input) show(input, "The files were too large to send: attach at most " +
      input.getAttribute("data-max-files") + " files of 10 MB each.");
  });

  function bar(form) {
    return form && form.querySelector ? form.querySelector(".upload-progress") : null;
  }
  document.addEventListener("htmx:xhr:progress", function (event) {
    var progress = bar(event.target);
    var detail = event.detail || {};
    if (!progress || !detail.lengthComputable || !detail.total) return;
    progress.hidden = false;
    progress.value = Math.round((detail.loaded / detail.total) * 100);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var progress = bar(event.target);
    if (progress) progress.hidden = true;
  });
})();

// Back and forward: htmx restores the list it swapped, but not what the filter controls show;
// set every filter form that pushes its URL from the address bar again.
(function () {
  "use strict";
  function syncFilters() {
    var params = new URLSearchParams(window.location.search);
    Array.prototype.forEach.call(document.querySelectorAll("form[hx-push-url]"), function (form) {
      Array.prototype.forEach.call(form.elements, function (control) {
        if (!control.name || control.type === "hidden" || control.type === "submit") return;
        if (!params.has(control.name) && (control.type === "month" || control.type === "date")) return;
        var value = params.get(control.name) || "";
        if (control.tagName === "SELECT") {
          var match = Array.prototype.some.call(control.options, function (o) { return o.value === value; });
          control.value = match ? value : (control.options.length ? control.options[0].value : "");
        } else if (control.type === "checkbox" || control.type === "radio") {
          control.checked = params.getAll(control.name).indexOf(control.value) !== -1;
        } else {
          control.value = value;
        }
      });
    });
  }
  document.addEventListener("htmx:historyRestore", syncFilters);
  window.addEventListener("popstate", function () { window.setTimeout(syncFilters, 0); });

  // After a reply is sent in place, keyboard and screen-reader users land on it.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || target.id !== "ticket-main" || !event.detail.successful) return;
    var comments = target.querySelectorAll(".comment");
    var last = comments[comments.length - 1];
    var config = event.detail.requestConfig || {};
    if (last && config.verb === "post" && /\/replies$/.test(config.path || "")) {
      last.setAttribute("tabindex", "-1");
      last.focus({ preventScroll: false });
    }
  });
})();

// A confirmation step in the page (<details class="confirm">): "No" and Escape close it and hand
// the focus back to its opener. Without JavaScript "No" is a link back to the page.
(function () {
  "use strict";
  function close(details) {
    details.open = false;
    var summary = details.querySelector("summary");
    if (summary) summary.focus();
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-close-details]");
    var details = link && link.closest("details");
    if (!details) return;
    event.preventDefault();
    close(details);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var details = event.target.closest && event.target.closest("details.confirm[open]");
    if (details) close(details);
  });

  // The admins' menu (<details class="topbar__menu">): closes on Escape (focus back on its button)
  // and on a click or focus outside it, as a menu does.
  function openMenus() { return document.querySelectorAll("details.topbar__menu[open]"); }
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    openMenus().forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary && menu.contains(document.activeElement)) summary.focus();
    });
  });
  function closeOutside(event) {
    openMenus().forEach(function (menu) { if (!menu.contains(event.target)) menu.removeAttribute("open"); });
  }
  document.addEventListener("click", closeOutside);
  document.addEventListener("focusin", closeOutside);
})();
