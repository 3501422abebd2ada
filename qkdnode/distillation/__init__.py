"""Key distillation algorithms, sans-IO (no sockets, no threads, no clocks).

Modules (each usable on its own):

* ``estimation``: error rates per basis and the phase-error confidence bound.
* ``cascade``: Cascade reconciliation; ``CascadeBob`` (drives) / ``CascadeAlice`` (answers).
* ``verification``: polynomial hashing mod 2^61 - 1, tag count from eps_cor.
* ``privacy_amplification``: exact (modified) Toeplitz hashing via a four-step FFT.
* ``finite_key``: Tomamichel et al. 2012 key length, multi-photon tagging, asymptotic rate.
* ``messages``: typed (TYPE, payload) messages with strict parsing.
* ``session``: ``AliceBlockSession`` / ``BobBlockSession`` sequencing one block from sifted
  bits to a final key or an abort; a worker routes messages by ``messages.block_id_of``.
"""
