"""Device-independent QKD with a heralding station (Pironio et al. 2009; Arnon-Friedman et al. 2018/2019).

* `rounds`: per-event measurement settings, chosen locally and announced after the measurement,
  and the split of heralded events into key, test and discarded rounds;
* `chsh`: CHSH S from test rounds, with its standard error and a one-sided confidence bound;
* `eat`: the finite-size key length from entropy accumulation (no key unless S is well above 2);
* `messages`: the heralds, sifting and test-outcome messages with strict payload codecs.
"""
