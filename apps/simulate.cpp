// simulate: writes simulated TrackML events (hits, truth, particles, cells) to a folder.
//   simulate --events 10 --out DIR [--mu 200] [--sigma-z 55] [--seed S] [--detector detectors.csv] [--gzip]
//            [--first-event-id N] [--pixel-only]
//   simulate --pileup --events 300 --out DIR [--seed S]
//            pile-up mitigation events instead (data/pileup_sim.h: mu 140-200, 7k-10k particles each, a manifest
//            with the 80/10/10 split), the format apps/train --task pileup --data DIR and apps/infer read.
// Each file is written atomically (temp file + rename), so an interrupted run never leaves a half-written file.
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "data/detector.h"
#include "data/pileup_sim.h"
#include "data/simulator.h"
#include "data/trackml_io.h"

int main(int argc, char** argv) {
  CLI::App app{"Simulate TrackML events (pile-up + hard scatter, helices in a 2 T solenoid, digitised cells)"};
  int events = 1;
  std::string out, detector_path;
  bool gzip = false;
  int64_t first_event_id = 1000;
  data::sim::SimConfig cfg;
  app.add_option("--events", events, "number of events")->required()->check(CLI::PositiveNumber);
  app.add_option("--out", out, "output folder (created if needed)")->required();
  app.add_option("--mu", cfg.mu, "mean number of pile-up collisions")->check(CLI::NonNegativeNumber);
  app.add_option("--seed", cfg.seed, "random seed (same seed => identical files)");
  app.add_option("--sigma-z", cfg.sigma_z,
                 "the collision vertices' z spread in mm (55, the default: as the throughput-phase events HEPT's "
                 "tracking data come from; 5.5: as the Kaggle training events)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--detector", detector_path, "detectors.csv[.gz] (default: the built-in TrackML geometry)");
  app.add_flag("--gzip", gzip, "write .csv.gz files");
  app.add_option("--first-event-id", first_event_id, "id of the first event")->check(CLI::NonNegativeNumber);
  app.add_flag("--pixel-only", cfg.pixel_only, "simulate only the pixel volumes 7, 8, 9");
  bool pileup = false;
  app.add_flag("--pileup", pileup, "simulate pile-up mitigation events (particles, vertex labels) instead");
  CLI11_PARSE(app, argc, argv);

  try {
    if (pileup) {
      data::pileup::PileupConfig pcfg;
      pcfg.seed = cfg.seed;
      const auto t0 = std::chrono::steady_clock::now();
      data::pileup::write_pileup_dataset(out, events, pcfg);
      fmt::print("{} pile-up events (seed {}) in {}, {:.1f} s\n", events, pcfg.seed, out,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      return 0;
    }
    const data::Detector loaded = detector_path.empty() ? data::Detector{} : data::read_detectors(detector_path);
    const data::Detector& det = detector_path.empty() ? data::builtin_detector() : loaded;
    std::filesystem::create_directories(out);
    const data::sim::Simulator sim(det, cfg);
    for (int i = 0; i < events; ++i) {
      const int64_t id = first_event_id + i;
      const auto t0 = std::chrono::steady_clock::now();
      const data::Event ev = sim.simulate(id);
      data::write_event(data::event_prefix(out, id), ev, gzip);
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      fmt::print("event {} ({}/{}): {} hits, {} particles, {} cells, {:.2f} s\n", id, i + 1, events, ev.hits.size(),
                 ev.particles.size(), ev.cells.size(), sec);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "simulate: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
