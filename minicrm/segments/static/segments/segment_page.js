// The segment page: the size-over-time chart (the delete dialog opens through app.js).
(function () {
  "use strict";

  const canvas = document.getElementById("size-chart");
  const source = document.getElementById("size-history");
  if (!canvas || !source || typeof window.Chart === "undefined") return;
  const points = JSON.parse(source.textContent);
  let chart = null;

  // Colours come from the design tokens, read again whenever the theme changes.
  function token(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function draw() {
    if (chart) chart.destroy();
    const accent = token("--accent");
    const grid = token("--border");
    const text = token("--muted-foreground");
    const numbers = new Intl.NumberFormat();
    chart = new window.Chart(canvas, {
      type: "line",
      data: {
        labels: points.map((point) => point.label),
        datasets: [{
          label: "Customers",
          data: points.map((point) => point.count),
          borderColor: accent,
          backgroundColor: accent + "22",
          fill: true,
          tension: 0.3,
          pointRadius: points.length > 40 ? 0 : 3,
          pointBackgroundColor: accent,
        }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: (item) => `${numbers.format(item.parsed.y)} customers` } },
        },
        scales: {
          // A single day sits in the middle rather than on the axis.
          x: { offset: points.length === 1, grid: { display: false }, ticks: { color: text, maxTicksLimit: 8 }, border: { color: grid } },
          y: {
            beginAtZero: true,
            grid: { color: grid },
            border: { display: false },
            ticks: { color: text, precision: 0, callback: (value) => numbers.format(value) },
          },
        },
      },
    });
  }

  draw();
  new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", draw);
})();
