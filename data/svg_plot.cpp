// SVG figures (see svg_plot.h).
#include "data/svg_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>

namespace data {

namespace {

constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

void write_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << text;
    if (!f) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  void finish() {
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
  }
};

// A tick label: 3 significant digits; on a log axis values from 1000 to 1e6 are written out (3570, not 3.57e+03).
std::string tick(double v, bool log) {
  if (!log || std::abs(v) < 1000 || std::abs(v) >= 1e6) return fmt::format("{:.3g}", v);
  const double unit = std::pow(10.0, std::floor(std::log10(std::abs(v))) - 2);
  return fmt::format("{:.0f}", std::round(v / unit) * unit);
}

// A panel: axes box with ticks at (x0, y0) of size (w, h) mapping the ranges. With a log axis the range holds
// log10 of the values (tx / ty map a value into range space, sx / sy a range value onto the page).
struct Panel {
  double x0, y0, w, h;
  Range rx, ry;
  bool log_x = false, log_y = false;
  double tx(double v) const { return log_x ? (v > 0 ? std::log10(v) : NAN) : v; }
  double ty(double v) const { return log_y ? (v > 0 ? std::log10(v) : NAN) : v; }
  double sx(double t) const { return x0 + (t - rx.lo) / (rx.hi - rx.lo) * w; }
  double sy(double t) const { return y0 + h - (t - ry.lo) / (ry.hi - ry.lo) * h; }
  double px(double v) const { return sx(tx(v)); }
  double py(double v) const { return sy(ty(v)); }
  std::string axes(const std::string& xl, const std::string& yl) const {
    std::string s = fmt::format("<rect x='{}' y='{}' width='{}' height='{}' fill='none' stroke='black'/>\n", x0, y0, w, h);
    for (int i = 0; i <= 4; ++i) {
      const double vx = rx.lo + (rx.hi - rx.lo) * i / 4, vy = ry.lo + (ry.hi - ry.lo) * i / 4;
      s += fmt::format("<text x='{:.1f}' y='{:.1f}' font-size='10' text-anchor='middle'>{}</text>\n", sx(vx), y0 + h + 14,
                       tick(log_x ? std::pow(10.0, vx) : vx, log_x));
      s += fmt::format("<text x='{:.1f}' y='{:.1f}' font-size='10' text-anchor='end'>{}</text>\n", x0 - 4, sy(vy) + 3,
                       tick(log_y ? std::pow(10.0, vy) : vy, log_y));
    }
    s += fmt::format("<text x='{:.1f}' y='{:.1f}' font-size='12' text-anchor='middle'>{}</text>\n", x0 + w / 2, y0 + h + 32, escape(xl));
    s += fmt::format("<text x='{:.1f}' y='{:.1f}' font-size='12' text-anchor='middle' transform='rotate(-90 {:.1f} {:.1f})'>{}</text>\n",
                     x0 - 42, y0 + h / 2, x0 - 42, y0 + h / 2, escape(yl));
    return s;
  }
};

std::string header(double w, double h, const std::string& title) {
  return fmt::format("<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' width='{}' "
                     "height='{}' viewBox='0 0 {} {}'>\n<rect width='100%' height='100%' fill='white'/>\n"
                     "<text x='{}' y='20' font-size='14' text-anchor='middle'>{}</text>\n",
                     w, h, w, h, w / 2, escape(title));
}

}  // namespace

void write_line_plot(const std::string& path, const std::string& title, const std::string& x_label,
                     const std::string& y_label, const std::vector<PlotSeries>& series, const LinePlotOptions& options) {
  Panel p{70, 40, 520, 300, {}, {}, options.log_x, options.log_y};
  for (const auto& s : series) {
    if (s.xs.size() != s.ys.size()) throw std::invalid_argument("write_line_plot: series '" + s.name + "' x/y lengths differ");
    for (size_t i = 0; i < s.xs.size(); ++i) {
      const double x = p.tx(s.xs[i]), y = p.ty(s.ys[i]);
      if (std::isfinite(x) && std::isfinite(y)) p.rx.add(x), p.ry.add(y);
    }
  }
  p.rx.finish(), p.ry.finish();
  std::string svg = header(760, 400, title) + p.axes(x_label, y_label);
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const char* colour = kPalette[k % 10];
    const std::string dash = k >= 10 ? " stroke-dasharray='6 3'" : "";
    std::string pts, dots;
    for (size_t i = 0; i < s.xs.size(); ++i) {
      const double x = p.px(s.xs[i]), y = p.py(s.ys[i]);
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      pts += fmt::format("{:.1f},{:.1f} ", x, y);
      if (options.markers) dots += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='2.5' fill='{}'/>", x, y, colour);
    }
    svg += fmt::format("<polyline fill='none' stroke='{}' stroke-width='2'{} points='{}'/>{}\n", colour, dash, pts, dots);
    svg += fmt::format("<line x1='598' y1='{}' x2='612' y2='{}' stroke='{}' stroke-width='2'{}/>", 56 + 16 * k, 56 + 16 * k,
                       colour, dash);
    svg += fmt::format("<text x='615' y='{}' font-size='12' fill='{}'>{}</text>\n", 60 + 16 * k, colour, escape(s.name));
  }
  write_atomic(path, svg + "</svg>\n");
}

void write_event_plot(const std::string& path, const std::vector<double>& x, const std::vector<double>& y,
                      const std::vector<double>& z, const std::vector<int64_t>& label) {
  if (x.size() != y.size() || x.size() != z.size() || x.size() != label.size())
    throw std::invalid_argument("write_event_plot: x, y, z and label lengths differ");
  Panel xy{60, 40, 400, 400, {}, {}}, rz{540, 40, 600, 400, {}, {}};
  std::vector<double> r(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    r[i] = std::hypot(x[i], y[i]);
    const double extent = std::max(std::abs(x[i]), std::abs(y[i]));
    xy.rx.add(-extent), xy.rx.add(extent), xy.ry.add(-extent), xy.ry.add(extent);
    rz.rx.add(z[i]), rz.ry.add(r[i]);
  }
  xy.rx.finish(), xy.ry.finish(), rz.rx.finish(), rz.ry.finish();
  rz.ry.lo = 0;
  std::string svg = header(1180, 500, fmt::format("{} hits coloured by track candidate", x.size()));
  svg += xy.axes("x [mm]", "y [mm]") + rz.axes("z [mm]", "r [mm]");
  for (size_t i = 0; i < x.size(); ++i) {
    const char* c = kPalette[static_cast<uint64_t>(label[i] * 2654435761LL) % 10];
    svg += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='1' fill='{}'/><circle cx='{:.1f}' cy='{:.1f}' r='1' fill='{}'/>\n",
                       xy.px(x[i]), xy.py(y[i]), c, rz.px(z[i]), rz.py(r[i]), c);
  }
  write_atomic(path, svg + "</svg>\n");
}

void write_eta_phi_plot(const std::string& path, const std::string& title, const std::vector<double>& eta,
                        const std::vector<double>& phi, const std::vector<double>& value) {
  if (eta.size() != phi.size() || eta.size() != value.size())
    throw std::invalid_argument("write_eta_phi_plot: eta, phi and value lengths differ");
  Panel p{60, 40, 700, 350, {}, {}};
  for (size_t i = 0; i < eta.size(); ++i) p.rx.add(eta[i]), p.ry.add(phi[i]);
  p.rx.finish(), p.ry.finish();
  std::string svg = header(800, 440, title) + p.axes("eta", "phi");
  for (size_t i = 0; i < eta.size(); ++i) {
    const double v = std::clamp(value[i], 0.0, 1.0);
    svg += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='1.5' fill='rgb({},{},{})'/>\n", p.px(eta[i]), p.py(phi[i]),
                       static_cast<int>(255 * v), 40, static_cast<int>(255 * (1 - v)));
  }
  write_atomic(path, svg + "</svg>\n");
}

}  // namespace data
