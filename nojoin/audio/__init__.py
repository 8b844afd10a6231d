"""Audio in and out of the library, Qt-free: decoding any audio/video file to 16 kHz mono
(`decode`, PyAV), sound devices (`devices`), crash-safe two-channel recording (`recorder`,
with `align` keeping the channels on one timeline and `recovery` rescuing interrupted
recordings), importing files (`importer`), and the one save function for recordings
(`saving`). Meetings are stored through the `nojoin.models.MeetingStore` port, never the
library itself."""
