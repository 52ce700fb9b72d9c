"""Who a party is: certificates, the certificate directory, and signatures.

Tier ``identity`` of the core (see :mod:`pets` and docs/ARCHITECTURE.md):

* :mod:`pets.identity.certificates`: the private CA, party certificates that
  carry ``pets://<role>/<name>``, and reading a peer's identity back;
* :mod:`pets.identity.files`: the certificate directory on disk (``pets certs``);
* :mod:`pets.identity.signing`: certificate-key signatures over Paillier query specs.
"""
