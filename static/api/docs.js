// The API reference: lists every endpoint from /api/openapi.json, and a "try it" form that sends
// one request with a pasted token. A file of its own: the CSP allows no inline script.
(function () {
  "use strict";

  function element(tag, text, className) {
    var node = document.createElement(tag);
    if (text) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function listEndpoints(spec) {
    var target = document.getElementById("endpoint-list");
    if (!target) return;
    Object.keys(spec.paths).forEach(function (path) {
      var item = spec.paths[path];
      Object.keys(item).forEach(function (method) {
        var op = item[method];
        var section = element("section");
        var heading = element("h3");
        heading.appendChild(element("span", method.toUpperCase(), "op"));
        heading.appendChild(element("code", path));
        section.appendChild(heading);
        if (op.summary) section.appendChild(element("p", op.summary));
        var scope = op.security && op.security[0] && op.security[0].oauth2 && op.security[0].oauth2[0];
        if (scope) section.appendChild(element("p", "Scope: " + scope));
        var params = (op.parameters || []).map(function (p) { return p.name + " (" + p.in + ")"; });
        if (params.length) section.appendChild(element("p", "Parameters: " + params.join(", ")));
        var body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
        if (body && body.example) {
          var pre = element("pre");
          pre.tabIndex = 0;  // a keyboard can scroll it sideways
          pre.appendChild(element("code", JSON.stringify(body.example, null, 2)));
          section.appendChild(element("p", "Example body (the seed's):"));
          section.appendChild(pre);
        }
        var codes = Object.keys(op.responses || {}).map(function (code) {
          return code + " " + (op.responses[code].description || "");
        });
        section.appendChild(element("p", "Answers: " + codes.join("; ")));
        target.appendChild(section);
      });
    });
    var note = document.getElementById("endpoints-note");
    if (note) note.textContent = "From the OpenAPI document, " + spec.info.title + " " + spec.info.version + ".";
  }

  function tryIt(event) {
    event.preventDefault();
    var form = event.target;
    var output = document.getElementById("try-output");
    var headers = {"Authorization": "Bearer " + form.token.value};
    var options = {method: form.method.value, headers: headers};
    if (form.method.value !== "GET" && form.body.value.trim()) {
      headers["Content-Type"] = "application/json";
      options.body = form.body.value;
    }
    output.textContent = "Sending…";
    fetch(form.path.value, options).then(function (response) {
      return response.text().then(function (text) {
        var shown = text;
        try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (ignored) { /* not JSON */ }
        output.textContent = response.status + " " + response.statusText + "\n" + shown;
      });
    }).catch(function (error) { output.textContent = "The request failed: " + error; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    fetch("/api/openapi.json").then(function (r) { return r.json(); }).then(listEndpoints).catch(function () {});
    var form = document.getElementById("try-form");
    if (form) form.addEventListener("submit", tryIt);
  });
})();
