// Group pages: the split-method switch of the add-expense form, and the spending charts.
(function () {
  "use strict";
  var method = document.getElementById("method");
  if (method) {
    var sync = function () {
      var itemized = method.value === "itemized";
      document.getElementById("people").hidden = itemized;
      document.getElementById("items").hidden = !itemized;
      document.querySelectorAll("[data-method-hint]").forEach(function (el) {
        el.hidden = el.getAttribute("data-method-hint") !== method.value;
      });
    };
    method.addEventListener("change", sync);
    sync();
  }
  var data = document.getElementById("chart-data");
  if (data && window.Chart) {
    var d = JSON.parse(data.textContent);
    var scale = Math.pow(10, d.exponent);
    var fmt = new Intl.NumberFormat(undefined, { style: "currency", currency: d.currency });
    var draw = function (id, kind, rows) {
      var el = document.getElementById(id);
      if (!el) return;
      new window.Chart(el, {
        type: kind,
        data: {
          labels: rows.map(function (r) { return r[0] || "—"; }),
          datasets: [{ label: d.currency, data: rows.map(function (r) { return r[1] / scale; }) }]
        },
        options: {
          maintainAspectRatio: false,
          animation: false,
          plugins: {
            legend: { display: kind === "doughnut" },
            tooltip: { callbacks: { label: function (c) { return fmt.format(c.parsed.y !== undefined ? c.parsed.y : c.parsed); } } }
          }
        }
      });
    };
    draw("chart-category", "doughnut", d.category);
    draw("chart-month", "bar", d.month);
  }
})();
