"""NUMPY kernels, one op family per module.

Every module in this package is imported by the registry on first use; a new module only needs
``@register`` on its functions. See :mod:`aioinfer.plugins.numpy.registry` for the signature.
"""
