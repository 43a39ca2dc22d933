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
  const shortDate = (iso) => new Date(iso + "T00:00:00").toLocaleDateString(undefined, { day: "numeric", month: "short" });

  function options(formatValue, xTitle, formatTick) {
    return {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { display: false }, tooltip: { callbacks: { label: (item) => formatValue(item.parsed.y) } } },
      scales: {
        x: {
          grid: { display: false }, border: { color: css("--border") },
          // Every bucket is labelled; the 26 weeks skip labels as the width requires.
          ticks: { color: css("--muted-foreground"), maxRotation: 0, autoSkip: !xTitle, autoSkipPadding: 12 },
          title: { display: Boolean(xTitle), text: xTitle || "", color: css("--muted-foreground") },
        },
        y: { beginAtZero: true, grid: { color: css("--border") }, ticks: { color: css("--muted-foreground"), callback: formatTick || formatValue, maxTicksLimit: 6 }, border: { display: false } },
      },
    };
  }

  const revenue = new Chart(document.getElementById("revenue-chart"), {
    type: "bar",
    data: {
      labels: data.weeks.map((week) => shortDate(week.start)),
      datasets: [{ label: "Revenue", data: data.weeks.map((week) => week.revenue), borderRadius: 4, maxBarThickness: 28 }],
    },
    options: options(money, undefined, moneyAxis),
  });
  const recency = new Chart(document.getElementById("recency-chart"), {
    type: "bar",
    data: {
      labels: data.recency.map((bucket) => bucket.short),
      datasets: [{ label: "Customers", data: data.recency.map((bucket) => bucket.customers), borderRadius: 4, maxBarThickness: 40 }],
    },
    options: options(count, "Days since the last order"),
  });

  function paint() {
    Chart.defaults.font.family = css("--font-sans");
    revenue.data.datasets[0].backgroundColor = css("--accent");
    // One colour for the buckets; "never ordered" is not a recency, so it stays neutral.
    recency.data.datasets[0].backgroundColor = data.recency.map(
      (bucket, index) => css(index === data.recency.length - 1 ? "--muted-foreground" : "--accent")
    );
    revenue.options.scales = options(money, undefined, moneyAxis).scales;
    recency.options.scales = options(count, "Days since the last order").scales;
    revenue.update();
    recency.update();
  }
  paint();
  new MutationObserver(paint).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", paint);
})();
