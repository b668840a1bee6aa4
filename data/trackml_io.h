// TrackML event files: readers for hits, truth, particles and cells (plain .csv or .csv.gz; Kaggle and Codalab
// variants; columns found by header name) and the matching writers. Readers validate and return nothing partial:
// bad input throws data::ParseError naming the file, the line and the column.
#pragma once
#include <string>

#include "data/event.h"

namespace data {

Hits read_hits(const std::string& path);            // also rejects a duplicate hit_id
Truth read_truth(const std::string& path);          // also rejects a duplicate hit_id
Particles read_particles(const std::string& path);  // particle_type filled only when the column exists
Cells read_cells(const std::string& path);

// "<prefix>-<name>.csv" or "<prefix>-<name>.csv.gz", whichever exists (plain first); "" when neither does.
std::string find_event_file(const std::string& prefix, const std::string& name);

// Loads "<prefix>-{hits,truth,particles,cells}.csv[.gz]" for whichever exist (hits is required). The event id is the
// last 9 digits of the prefix. Truth rows are put in hits order; a truth file whose hit ids differ from the hits
// file, or cells of an unknown hit, throw ParseError.
Event read_event(const std::string& prefix);

// Writes the non-empty tables of `event` as "<prefix>-<name>.csv[.gz]", each atomically (temp + rename), in the
// TrackML column order (particle_type only when present).
void write_event(const std::string& prefix, const Event& event, bool gzip = true);

// "<dir>/event<9 digits>"
std::string event_prefix(const std::string& dir, int64_t event_id);

}  // namespace data
