"""Quality scores: a draft against the radiologist's final report (pure functions, no DB).

- `stats`: Wilson intervals, seeded bootstrap, "too few to judge";
- `text`: BLEU-4, ROUGE-L and chrF on the findings and on the impression;
- `extract`: the ConText-style label extractor and its YAML lexicon;
- `agreement`: per-finding sensitivity/specificity/F1, macro-F1, CRG (VLM3D);
- `triage`: the ED alert against critical findings of the final report;
- `pair` / `summary`: one pair's scores, and the headline estimates over many pairs.
"""
