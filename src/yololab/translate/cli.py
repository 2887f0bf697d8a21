"""``yololab translate``: synth (the toy corpus), train, eval, translate.

Only the standard library (and the engine's standard-library argument helpers) is imported here; torch
and the model load inside the commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from yololab._cli_group import (FORMATTER, add_group, add_overwrite, input_file, input_path, non_negative_int,
                                output_dir, positive_int, refuse_to_replace)
from yololab.engine.args import add_train_args, check_device, config_from_args
from yololab.errors import ConfigError, DataError

# the engine settings this task changes (the rest keep the engine's defaults; docs/translation.md says why):
# batches of about 3000 padded tokens, AdamW (0.9, 0.98), 300 warmup steps then inverse-sqrt decay, an EMA
# of the weights that averages over about the last 1000 steps
TRAIN_DEFAULTS = {
    "epochs": 40, "batch": 3000, "optimizer": "AdamW", "lr0": 2e-3, "momentum": 0.9, "beta2": 0.98,
    "weight_decay": 1e-4, "scheduler": "inverse_sqrt", "warmup_steps": 300, "warmup_bias_lr": 0.0,
    "warmup_momentum": 0.9, "clip_grad": 1.0, "ema": True, "ema_decay": 0.999, "ema_tau": 500.0,
    "patience": 0,
}


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _unit(text: str) -> float:
    """argparse type: a number in [0, 1) (dropout, label smoothing, a share of the data)."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _held_out(text: str) -> float:
    value = _number(text)
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 0.5], got {text!r}")
    return value


def add_corpus_args(p: argparse.ArgumentParser, with_val: bool) -> None:
    g = p.add_argument_group("corpus (one of --data, --src/--tgt, --tsv)")
    g.add_argument("--data", type=input_path, help="corpus folder of <split>.<lang>[.gz] files (Multi30K, `translate synth` output)")
    g.add_argument("--src", type=input_file, help="source sentences, one per line (with --tgt)")
    g.add_argument("--tgt", type=input_file, help="target sentences aligned line by line with --src")
    g.add_argument("--tsv", type=input_file, help="one 'source<TAB>target' pair per line")
    g.add_argument("--src-lang", help="source language in --data (needed when it holds more than two)")
    g.add_argument("--tgt-lang", help="target language in --data")
    if with_val:
        g.add_argument("--val-src", type=input_file, help="validation source file for --src/--tgt (default: hold out --val-fraction)")
        g.add_argument("--val-tgt", type=input_file, help="validation target file")
        g.add_argument("--val-tsv", type=input_file, help="validation TSV for --tsv")
        g.add_argument("--val-fraction", type=_unit, default=0.05,
                       help="share of a user corpus held out for validation when no validation files are given")


def corpus_kwargs(args: argparse.Namespace) -> dict:
    keys = ("data", "src", "tgt", "tsv", "src_lang", "tgt_lang", "val_src", "val_tgt", "val_tsv", "val_fraction")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


# ---------------------------------------------------------------------------------------------- synth


def cmd_synth(args: argparse.Namespace) -> int:
    from yololab.translate.toy import write_corpus

    meta = write_corpus(args.out, args.train, args.val, args.test, args.seed, args.held_out, args.overwrite)
    c = meta["counts"]
    print(f"wrote {args.out}: train {c['train']:,}, val {c['val']:,}, test {c['test']:,} sentence pairs (en -> fr); "
          f"{len(meta['held_out'])} combinations held out of train/val, each test sentence has one (corpus.json)")
    return 0


# ---------------------------------------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    from yololab.engine import Trainer
    from yololab.translate.task import TranslationTask

    model = {"d_model": args.d_model, "heads": args.heads, "enc_layers": args.enc_layers,
             "dec_layers": args.dec_layers, "d_ff": args.d_ff, "dropout": args.dropout,
             "attn_dropout": args.attn_dropout, "activation": args.activation, "norm_first": not args.post_norm,
             "positional": args.positional, "tie_embeddings": not args.no_tie}
    if args.d_model % args.heads:
        raise ConfigError(f"--d-model {args.d_model} is not divisible by --heads {args.heads}")
    task = TranslationTask(cfg, corpus_kwargs(args), model, vocab_size=args.vocab_size, spm_type=args.spm_type,
                           max_len=args.max_len, label_smoothing=args.label_smoothing,
                           epoch_batches=args.epoch_batches, val_beam=args.val_beam, test_beam=args.test_beam,
                           alpha=args.alpha, eval_test=not args.no_eval_test)
    summary = Trainer(task, cfg).fit()
    print(f"best validation BLEU {summary['best_fitness']:.2f} (epoch {summary['best_epoch']}); "
          f"{summary['stop_reason']}; results in {summary['run_dir']}")
    return 0


def add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="Train a Transformer on a parallel corpus (through yololab.engine).", formatter_class=FORMATTER,
        description="Train the encoder-decoder Transformer: sentencepiece on the training split, batches of about "
                    "--batch TOKENS (here --batch counts padded tokens, not sentences), label smoothing, "
                    "warmup + inverse-sqrt schedule, bf16 autocast where the CPU has it, EMA. Validates by BLEU "
                    "(greedy) every epoch; at the end decodes val and test with beam search and writes "
                    "curves_mt.png, bleu_report.png, decodes.md, attention maps, masks_demo.png and report.md.")
    add_corpus_args(p, with_val=True)
    g = p.add_argument_group("model")
    g.add_argument("--d-model", type=positive_int, default=256, help="width of embeddings and layers")
    g.add_argument("--heads", type=positive_int, default=4, help="attention heads")
    g.add_argument("--enc-layers", type=positive_int, default=3, help="encoder layers")
    g.add_argument("--dec-layers", type=positive_int, default=3, help="decoder layers")
    g.add_argument("--d-ff", type=positive_int, default=1024, help="feed-forward inner width")
    g.add_argument("--dropout", type=_unit, default=0.1, help="dropout on embeddings, residuals and feed-forward")
    g.add_argument("--attn-dropout", type=_unit, default=0.0, help="dropout on attention weights")
    g.add_argument("--activation", choices=("relu", "gelu"), default="relu", help="feed-forward activation")
    g.add_argument("--post-norm", action="store_true", help="post-norm layers (the 2017 paper) instead of pre-norm")
    g.add_argument("--positional", choices=("sinusoidal", "learned"), default="sinusoidal", help="positional encoding")
    g.add_argument("--no-tie", action="store_true", help="separate source/target embeddings and output projection")
    g = p.add_argument_group("tokens, batches, decoding")
    g.add_argument("--vocab-size", type=positive_int, default=5000, help="joint sentencepiece vocabulary (at most)")
    g.add_argument("--spm-type", choices=("bpe", "unigram"), default="bpe", help="sentencepiece model type")
    g.add_argument("--max-len", type=positive_int, default=128, help="longest sentence in tokens (longer: truncated)")
    g.add_argument("--label-smoothing", type=_unit, default=0.1, help="label smoothing of the loss")
    g.add_argument("--epoch-batches", type=non_negative_int, default=0,
                   help="batches per epoch (0: one pass over the training data); smaller = BLEU measured more often")
    g.add_argument("--val-beam", type=positive_int, default=1, help="beam during validation (1: greedy)")
    g.add_argument("--test-beam", type=positive_int, default=5, help="beam of the final evaluation of best.pt")
    g.add_argument("--alpha", type=_non_negative, default=0.6, help="length penalty ((5+len)/6)^alpha of beam search")
    g.add_argument("--no-eval-test", action="store_true", help="do not score the test split at every validation")
    add_train_args(p, TRAIN_DEFAULTS)
    p.set_defaults(func=cmd_train)


# ---------------------------------------------------------------------------------------------- eval


def cmd_eval(args: argparse.Namespace) -> int:
    refuse_to_replace([args.out], args.overwrite)
    check_device(args.device)
    out = args.out
    from yololab.translate.batching import encode_pairs
    from yololab.translate.corpus import drop_empty, load_folder, read_parallel, read_tsv
    from yololab.translate.evaluate import evaluate_pairs, scores_table, write_evaluation
    from yololab.translate.metrics import corpus_scores
    from yololab.translate.translator import Translator

    if not args.data and (bool(args.src) != bool(args.tgt) or bool(args.src) == bool(args.tsv)):
        raise DataError("give the sentences to score: --data FOLDER, or --src FILE --tgt FILE, or --tsv FILE")
    tr = Translator.from_checkpoint(args.weights, args.device)
    if args.data:
        corpus = load_folder(args.data, args.src_lang or tr.meta.get("src_lang"), args.tgt_lang or tr.meta.get("tgt_lang"))
        splits = args.split or corpus.test_splits or ["val"]
        missing = [s for s in splits if s not in corpus.splits]
        if missing:
            raise DataError(f"{args.data}: no split {missing[0]!r} (splits: {', '.join(corpus.splits)})")
        pairs = {s: corpus.splits[s] for s in splits}
    else:
        raw = read_tsv(args.tsv) if args.tsv else read_parallel(args.src, args.tgt)
        kept, skipped = drop_empty(raw)
        if not kept:
            raise DataError(f"{args.tsv or args.src}: no sentence pair with both sides non-empty")
        if skipped:
            print(f"{skipped} pairs with an empty side skipped")
        pairs = {Path(args.tsv or args.src).stem: kept}
    results = {}
    for split, p in pairs.items():
        enc = encode_pairs(tr.tokenizer, p, tr.model.cfg.max_len)
        results[split] = evaluate_pairs(tr.model, tr.tokenizer, p, enc, args.beam, args.alpha, args.max_tokens,
                                        details=True)
        s = results[split]["scores"]
        print(f"{split}: {s.bleu_detail}\n{split}: chrF2 = {s.chrf:.2f}"
              + (f"; {enc.truncated} sentences truncated to {tr.model.cfg.max_len} tokens" if enc.truncated else ""))
        if args.lowercase:
            lc = corpus_scores(results[split]["hypotheses"], results[split]["references"], lowercase=True)
            print(f"{split} (lowercased): {lc.bleu_detail}; chrF2 = {lc.chrf:.2f}")
    s = next(iter(results.values()))["scores"]
    print(f"BLEU signature: {s.bleu_signature}\nchrF signature: {s.chrf_signature}")
    if args.lowercase:
        print(f"lowercased BLEU signature: {lc.bleu_signature}")
    write_evaluation(results, out, tr.model, tr.tokenizer)
    from yololab.fileio import write_text_atomic

    write_text_atomic(out / "scores.md", f"# Evaluation of {args.weights}\n\n{scores_table(results)}\n")
    print(f"wrote {out}: scores.md, bleu_report.png, decodes.md, <split>.hyp, masks_demo.png, attention maps")
    return 0


# ---------------------------------------------------------------------------------------------- translate


def cmd_translate(args: argparse.Namespace) -> int:
    if args.attention:
        refuse_to_replace([args.attention], args.overwrite)
    check_device(args.device)
    from yololab.translate.corpus import read_lines
    from yololab.translate.translator import Translator

    sentences = list(args.text)
    if args.input:
        sentences += read_lines(args.input)
    if not sentences:
        sentences = sys.stdin.read().split("\n")
        if sentences and sentences[-1] == "":
            sentences.pop()
    tr = Translator.from_checkpoint(args.weights, args.device)
    for line in tr.translate(sentences, beam=args.beam, alpha=args.alpha):
        print(line)
    if args.attention:
        from yololab.translate import plots

        out = args.attention
        hyp = tr.translate(sentences[:1], beam=args.beam, alpha=args.alpha)[0]
        src_p, tgt_p, w = plots.attention_for(tr.model, tr.tokenizer, sentences[0], tr.tokenizer.encode([hyp])[0])
        paths = plots.plot_attention(src_p, tgt_p, w, out)
        print(f"wrote {len(paths)} attention maps of the first sentence to {out}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    sub = add_group(subparsers, "translate", "Transformer translation from primitives: synth (toy corpus), train, "
                                             "eval (sacrebleu BLEU/chrF), translate.")

    p = sub.add_parser("synth", help="Generate the toy English -> French-like parallel corpus.", formatter_class=FORMATTER,
                       description="Sentence pairs from a small grammar (statements, negations, questions, "
                                   "wh-questions with inversion, three tenses, agreement, elision). Some "
                                   "adjective+noun, subject+verb and verb+construction combinations are held out: "
                                   "train/val never contain them, every test sentence contains one.")
    p.add_argument("--out", type=output_dir, required=True, help="output folder (new, empty, or an earlier synth output)")
    p.add_argument("--train", type=positive_int, default=20000, help="training pairs")
    p.add_argument("--val", type=positive_int, default=500, help="validation pairs (same combinations as train)")
    p.add_argument("--test", type=positive_int, default=1000, help="test pairs (each with a held-out combination)")
    p.add_argument("--seed", type=int, default=0, help="random seed (the held-out combinations depend on it)")
    p.add_argument("--held-out", type=_held_out, default=0.08, help="share of each kind of combination held out, (0, 0.5]")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier synth output in --out")
    p.set_defaults(func=cmd_synth)

    add_train_parser(sub)

    p = sub.add_parser("eval", help="Score a checkpoint on a corpus split: BLEU and chrF with sacrebleu.", formatter_class=FORMATTER,
                       description="Translate a split with beam search and score it with sacrebleu on detokenized "
                                   "text (signature printed); write bleu_report.png, decodes.md, the hypotheses, "
                                   "masks_demo.png and the attention maps of the first sentence.")
    p.add_argument("--weights", type=input_file, required=True,
                   help="a checkpoint of `yololab translate train` (weights/best.pt)")
    add_corpus_args(p, with_val=False)
    p.add_argument("--split", nargs="+", help="splits of --data to score (default: its test splits, else val)")
    p.add_argument("--beam", type=positive_int, default=5, help="beam size (1: greedy)")
    p.add_argument("--alpha", type=_non_negative, default=0.6, help="length penalty exponent")
    p.add_argument("--max-tokens", type=positive_int, default=4096, help="source tokens x beam per decoding batch")
    p.add_argument("--lowercase", action="store_true",
                   help="also print case-insensitive scores (as many published Multi30K results are)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--out", type=output_dir, default=Path("runs/translate/eval"), help="folder for the report files")
    add_overwrite(p, "a non-empty --out folder")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("translate", help="Translate sentences with a checkpoint.", formatter_class=FORMATTER,
                       description="Translate the sentences given as arguments, in --input (one per line) or on "
                                   "stdin; one translation per line on stdout.")
    p.add_argument("text", nargs="*", help="sentences to translate")
    p.add_argument("--weights", type=input_file, required=True, help="a checkpoint of `yololab translate train`")
    p.add_argument("--input", type=input_file, help="a text file of sentences, one per line")
    p.add_argument("--beam", type=positive_int, default=5, help="beam size (1: greedy)")
    p.add_argument("--alpha", type=_non_negative, default=0.6, help="length penalty exponent")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--attention", type=output_dir, metavar="DIR",
                   help="also write the attention maps of the first sentence here")
    add_overwrite(p, "a non-empty --attention folder")
    p.set_defaults(func=cmd_translate)
