"""Neural machine translation: a Transformer encoder-decoder from primitives, trained through the engine.

model (attention, layers, Transformer) -> tokenizer (sentencepiece) -> corpus / batching / toy ->
decode (greedy, beam search, KV cache) -> metrics (sacrebleu) -> evaluate / plots -> task (the engine's
Task) -> cli (``yololab translate``). See docs/translation.md.
"""
