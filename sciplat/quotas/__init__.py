"""Quotas: resolving each user's limits from the config, measuring use, enforcing.

``services/`` hold the policy (resolver, usage, checks, rate limits); ``storage/`` the
mechanics (walking directories, ext4 images, XFS project quotas, the mount table). Storage
limits on homes are applied by :mod:`sciplat.volumes.storage_limits`.
"""
