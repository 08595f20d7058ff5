"""OCI registries: claims that travel with images and Helm charts (DESIGN §11, docs/helm-oci.md).

``ref`` parses references and the device's mirror configuration, ``registry`` is the small
HTTP client (bounded, digest-checked), ``referrers`` finds and pushes wotr attachments,
``attach``, ``copy``, ``check`` and ``sign`` are the command bodies. Nothing here is imported by
the plain ``verify`` path: only ``verify --oci`` and the ``oci`` commands load it.
"""
