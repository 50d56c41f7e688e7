"""Speech services of the engine process: speech to text (faster-whisper) and text to speech
(piper), each on its own worker thread, never on the LLM's generation thread.

- :mod:`src.audio.codecs`: decode uploads (wav, mp3, m4a, ogg/opus, webm, flac) and encode
  speech (mp3, opus, aac, flac, wav, pcm) as a stream, with PyAV.
- :mod:`src.audio.stt`: :class:`~src.audio.stt.SpeechToText`.
- :mod:`src.audio.tts`: :class:`~src.audio.tts.TextToSpeech`.
- :mod:`src.audio.worker`: the one-thread job queue both run on (images use it too).
"""
