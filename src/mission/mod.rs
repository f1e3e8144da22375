//! Missions: `kitty-specs/<NNN-slug>/`, its `meta.json`, handles, creation and work packages.
