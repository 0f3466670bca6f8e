"""Music for the picture, without audio I/O: the cue sheet (``types``), the planner that reads it off the scenes
(``planner``, with the click-track fit in ``tempo``), the composer (``composer`` with ``harmony`` and ``theme``)
and the MIDI file (``midi``). ``audiostory_core.render.music_renderer`` plays it with FluidSynth."""
