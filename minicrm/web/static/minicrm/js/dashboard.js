// Charts take their colours from the design tokens and redraw when the theme changes.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("dashboard-chart-data").textContent);
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  // Money as the server writes it (the shop currency in the shop locale, whole units); the axis
  // in the short form (₹25L, $2.5M) so long amounts keep to the card.
  const moneyFull = new Intl.NumberFormat(data.money.locale, { style: "currency", currency: data.money.currency, maximumFractionDigits: 0, minimumFractionDigits: 0 });
  const moneyShort = new Intl.NumberFormat(data.money.locale, { style: "currency", currency: data.money.currency, notation: "compact", maximumFractionDigits: 1 });
  const money = (value) => moneyFull.format(value);
  const moneyAxis = (value) => moneyShort.format(value);
  const count = (value) => Math.round(value).toLocaleString();
  // Whole numbers only on a count axis (no "0.5 customers").
  const countAxis = (value) => (Number.isInteger(value) ? count(value) : "");
  const labels = data.buckets.map((bucket) => bucket.label);

  function options(formatValue, formatTick) {
    return {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { display: false }, tooltip: { callbacks: { label: (item) => formatValue(item.parsed.y) } } },
      scales: {
        x: {
          grid: { display: false }, border: { color: css("--border") },
          // Labels skip as the width requires, never rotated into each other.
          ticks: { color: css("--muted-foreground"), maxRotation: 0, autoSkip: true, autoSkipPadding: 12 },
        },
        y: { beginAtZero: true, grid: { color: css("--border") }, ticks: { color: css("--muted-foreground"), callback: formatTick, maxTicksLimit: 6 }, border: { display: false } },
      },
    };
  }

  function bars(id, label, values, formatValue, formatTick) {
    return new Chart(document.getElementById(id), {
      type: "bar",
      data: { labels, datasets: [{ label, data: values, borderRadius: 4, maxBarThickness: 28 }] },
      options: options(formatValue, formatTick),
    });
  }
  const charts = [
    [bars("revenue-chart", "Revenue", data.buckets.map((bucket) => bucket.revenue), money, moneyAxis), money, moneyAxis],
    [bars("new-customers-chart", "New customers", data.buckets.map((bucket) => bucket.new_customers), count, countAxis), count, countAxis],
  ];

  function paint() {
    Chart.defaults.font.family = css("--font-sans");
    for (const [chart, formatValue, formatTick] of charts) {
      chart.data.datasets[0].backgroundColor = css("--accent");
      chart.options.scales = options(formatValue, formatTick).scales;
      chart.update();
    }
  }
  paint();
  new MutationObserver(paint).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", paint);
})();
