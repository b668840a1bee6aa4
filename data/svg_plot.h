// Minimal SVG figures with no dependency: line plots (training curves) and an event display (x-y and r-z views,
// hits coloured by a label). Files are written atomically (temporary file, then rename).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace data {

struct PlotSeries {
  std::string name;
  std::vector<double> xs, ys;
};

struct LinePlotOptions {
  bool log_x = false, log_y = false;  // log10 axes (non-positive values are left out)
  bool markers = false;               // a dot at every point (for short series)
};

// One colour per series (10 colours, then the same colours dashed).
void write_line_plot(const std::string& path, const std::string& title, const std::string& x_label,
                     const std::string& y_label, const std::vector<PlotSeries>& series,
                     const LinePlotOptions& options = {});

// x, y, z in mm; label per hit (e.g. a track candidate id; equal labels share a colour).
void write_event_plot(const std::string& path, const std::vector<double>& x, const std::vector<double>& y,
                      const std::vector<double>& z, const std::vector<int64_t>& label);

// eta-phi picture of particles coloured by a value in [0, 1] (blue 0 -> red 1), e.g. the LV probability.
void write_eta_phi_plot(const std::string& path, const std::string& title, const std::vector<double>& eta,
                        const std::vector<double>& phi, const std::vector<double>& value);

}  // namespace data
