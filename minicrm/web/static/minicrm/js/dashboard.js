// Charts take their colours from the design tokens and redraw when the theme changes. The
// figures may arrive after the page (htmx swaps them in once a task has computed them), so the
// charts are drawn whenever chart data without charts is on the page.
(function () {
  "use strict";
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  // A label of the x axis ("12 Nov", "Nov 2025") needs about this many pixels with its gap: at
  // most one label per this much width, so labels never touch, even at 390 px.
  const X_LABEL_PIXELS = 64;
  const xTicks = (width) => Math.max(2, Math.floor(width / X_LABEL_PIXELS));
  let charts = [];

  function draw(source) {
    const data = JSON.parse(source.textContent);
    // Money as the server writes it (the shop currency in the shop locale, whole units); the
    // axis in the short form (₹25L, $2.5M) so long amounts keep to the card.
    const moneyFull = new Intl.NumberFormat(data.money.locale, { style: "currency", currency: data.money.currency, maximumFractionDigits: 0, minimumFractionDigits: 0 });
    const moneyShort = new Intl.NumberFormat(data.money.locale, { style: "currency", currency: data.money.currency, notation: "compact", maximumFractionDigits: 1 });
    const money = (value) => moneyFull.format(value);
    const moneyAxis = (value) => moneyShort.format(value);
    // Counts are grouped in thousands, as the server writes them (intcomma).
    const count = (value) => Math.round(value).toLocaleString("en-US");
    // Whole numbers only on a count axis (no "0.5 customers").
    const countAxis = (value) => (Number.isInteger(value) ? count(value) : "");
    const labels = data.buckets.map((bucket) => bucket.label);

    function options(formatValue, formatTick, width) {
      return {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (item) => formatValue(item.parsed.y) } } },
        onResize: (chart, size) => {
          chart.options.scales.x.ticks.maxTicksLimit = xTicks(size.width);
        },
        scales: {
          x: {
            grid: { display: false }, border: { color: css("--border") },
            // Labels skip as the width requires, never rotated into each other.
            ticks: { color: css("--muted-foreground"), maxRotation: 0, minRotation: 0, autoSkip: true, autoSkipPadding: 12, maxTicksLimit: xTicks(width) },
          },
          y: { beginAtZero: true, grid: { color: css("--border") }, ticks: { color: css("--muted-foreground"), callback: formatTick, maxTicksLimit: 6 }, border: { display: false } },
        },
      };
    }

    function bars(id, label, values, formatValue, formatTick) {
      const canvas = document.getElementById(id);
      const chart = new Chart(canvas, {
        type: "bar",
        data: { labels, datasets: [{ label, data: values, borderRadius: 4, maxBarThickness: 28 }] },
        options: options(formatValue, formatTick, canvas.parentElement.clientWidth),
      });
      return { chart, restyle: () => { chart.options.scales = options(formatValue, formatTick, chart.width).scales; } };
    }
    return [
      bars("revenue-chart", "Revenue", data.buckets.map((bucket) => bucket.revenue), money, moneyAxis),
      bars("new-customers-chart", "New customers", data.buckets.map((bucket) => bucket.new_customers), count, countAxis),
    ];
  }

  function paint() {
    Chart.defaults.font.family = css("--font-sans");
    for (const { chart, restyle } of charts) {
      chart.data.datasets[0].backgroundColor = css("--accent");
      restyle();
      chart.update();
    }
  }

  function start() {
    const source = document.getElementById("dashboard-chart-data");
    if (!source || source.dataset.drawn) return;
    source.dataset.drawn = "true";
    for (const { chart } of charts) chart.destroy();
    charts = draw(source);
    paint();
  }

  start();
  document.addEventListener("htmx:afterSettle", start);
  new MutationObserver(paint).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", paint);
})();
