// The segment page: the size-over-time chart (the delete dialog opens through app.js).
(function () {
  "use strict";

  const canvas = document.getElementById("size-chart");
  const source = document.getElementById("size-history");
  if (!canvas || !source || typeof window.Chart === "undefined") return;
  const points = JSON.parse(source.textContent);
  const format = JSON.parse((document.getElementById("size-format") || {}).textContent || "{}");
  // Counts in full as the server writes them (intcomma: grouped in thousands); the axis in the
  // shop locale's short form (12.3L in en-IN, 1.2M in en), so long counts keep to the chart.
  const numbers = new Intl.NumberFormat("en-US");
  const short = new Intl.NumberFormat(format.locale || "en-US", { notation: "compact", maximumFractionDigits: 1, minimumFractionDigits: 0 });
  // As many date labels as fit side by side (about 70 px each), never rotated into each other.
  const xTicks = (width) => Math.max(2, Math.min(8, Math.floor(width / 70)));
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
        onResize: (resized, size) => { resized.options.scales.x.ticks.maxTicksLimit = xTicks(size.width); },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: (item) => `${numbers.format(item.parsed.y)} customers` } },
        },
        scales: {
          // A single day sits in the middle rather than on the axis.
          x: {
            offset: points.length === 1,
            grid: { display: false },
            ticks: { color: text, maxRotation: 0, minRotation: 0, autoSkip: true, autoSkipPadding: 12, maxTicksLimit: xTicks(canvas.clientWidth) },
            border: { color: grid },
          },
          y: {
            beginAtZero: true,
            grid: { color: grid },
            border: { display: false },
            // Whole customers only: no "0.5" tick on a small segment's axis.
            ticks: { color: text, precision: 0, maxTicksLimit: 6, callback: (value) => (Number.isInteger(value) ? short.format(value) : "") },
          },
        },
      },
    });
  }

  draw();
  new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", draw);
})();
