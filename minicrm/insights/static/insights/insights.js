// The insight panel: draws its facts as Chart.js charts (segment against all customers),
// follows the light/dark theme, and redraws after htmx swaps (polling, Regenerate).
(function () {
  "use strict";
  if (window.minicrmInsights) {
    window.minicrmInsights.refresh();
    return;
  }
  const chartSrc = document.currentScript ? document.currentScript.dataset.chartSrc : "";
  const drawn = new Map(); // canvas -> Chart
  let loading = null;

  function loadChart() {
    if (window.Chart) return Promise.resolve(window.Chart);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        const script = document.createElement("script");
        script.src = chartSrc;
        script.onload = function () { resolve(window.Chart); };
        script.onerror = reject;
        document.head.append(script);
      });
    }
    return loading;
  }

  function token(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function colours() {
    return {
      segment: token("--chart-1"),
      base: token("--gray-400"),
      text: token("--muted-foreground"),
      grid: token("--border"),
      font: token("--font-sans"),
    };
  }

  // Money as the server writes it: the facts' currency in the shop locale (data.money), whole
  // units; the axis in the short form (₹25L, $2.5M) so long amounts fit beside the bars.
  function formatter(unit, money, compact) {
    if (unit === "%") return function (value) { return value + "%"; };
    const number = new Intl.NumberFormat(money.locale, {
      style: "currency", currency: money.currency, maximumFractionDigits: compact ? 1 : 0,
      minimumFractionDigits: 0, notation: compact ? "compact" : "standard",
    });
    return function (value) { return number.format(value); };
  }

  function config(rows, unit, horizontal, money) {
    const c = colours();
    const format = formatter(unit, money, false);
    const valueAxis = {
      beginAtZero: true,
      ticks: { color: c.text, callback: formatter(unit, money, true), maxTicksLimit: 5 },
      grid: { color: c.grid },
      border: { display: false },
    };
    const labelAxis = {
      ticks: { color: c.text, maxRotation: 0, autoSkip: false, font: { size: 11 } },
      grid: { display: false },
      border: { color: c.grid },
    };
    return {
      type: "bar",
      data: {
        labels: rows.map(function (row) { return row.label; }),
        datasets: [
          { label: "This segment", data: rows.map(function (r) { return r.segment; }), backgroundColor: c.segment, borderRadius: 3 },
          { label: "All customers", data: rows.map(function (r) { return r.base; }), backgroundColor: c.base, borderRadius: 3 },
        ],
      },
      options: {
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        font: { family: c.font },
        scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis },
        plugins: {
          legend: { position: "bottom", labels: { color: c.text, boxWidth: 10, boxHeight: 10 } },
          tooltip: {
            callbacks: {
              label: function (item) {
                return item.dataset.label + ": " + format(item.parsed[horizontal ? "x" : "y"]);
              },
            },
          },
        },
      },
    };
  }

  function draw(container) {
    const source = container.querySelector('script[type="application/json"]');
    if (!source) return;
    const data = JSON.parse(source.textContent);
    container.dataset.drawn = "true";
    loadChart().then(function (Chart) {
      container.querySelectorAll("[data-chart]").forEach(function (figure) {
        const canvas = figure.querySelector("canvas");
        const series = data[figure.dataset.chart];
        if (!canvas || !series) return;
        const horizontal = figure.dataset.chart === "spend";
        drawn.set(canvas, new Chart(canvas, config(series.rows, figure.dataset.unit, horizontal, data.money)));
      });
    }).catch(function () {
      // Without Chart.js the tables below each chart still hold every figure.
      container.querySelectorAll("details.insight-table").forEach(function (d) { d.open = true; });
    });
  }

  function forget() {
    drawn.forEach(function (chart, canvas) {
      if (!canvas.isConnected) {
        chart.destroy();
        drawn.delete(canvas);
      }
    });
  }

  function refresh() {
    forget();
    document.querySelectorAll("[data-insight-charts]:not([data-drawn])").forEach(draw);
  }

  function recolour() {
    drawn.forEach(function (chart) {
      const c = colours();
      chart.data.datasets[0].backgroundColor = c.segment;
      chart.data.datasets[1].backgroundColor = c.base;
      Object.values(chart.options.scales).forEach(function (scale) {
        scale.ticks.color = c.text;
        if (scale.grid.display !== false) scale.grid.color = c.grid;
        if (scale.border.display !== false) scale.border.color = c.grid;
      });
      chart.options.plugins.legend.labels.color = c.text;
      chart.update("none");
    });
  }

  document.body.addEventListener("htmx:afterSettle", refresh);
  new MutationObserver(recolour).observe(document.documentElement, {
    attributes: true,
    attributeFilter: ["data-theme"],
  });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", recolour);
  window.minicrmInsights = { refresh: refresh };
  refresh();
})();
