package cloister.resource

# Default resource policy: any attestation result whose primary TEE was
# appraised as affirming may read any secret. The service checks before any
# resource policy runs that no appraisal in the result is contraindicated or
# none, so a device that failed its appraisal also blocks the release.
#
# input.token: the verified EAR claims.
# input.resource: {path, repository, type, tag}.
# input.query: the request's query parameters.

default allow := false

allow if input.token.submods.cpu0["ear.status"] == "affirming"
