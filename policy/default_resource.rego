package cloister.resource

# Default resource policy: any attestation result whose primary TEE was
# appraised as affirming may read any secret. The service checks before any
# resource policy runs that no appraisal in the result is contraindicated or
# none, so a device that failed its appraisal also blocks the release.
#
# input.token: the verified EAR claims.
# input.resource: {path, repository, type, tag}.
# input.query: the request's query parameters.
#
# When allow denies a request, the service evaluates `reasons` and puts
# each reason object {rule, claim, value, expected, message} in its log
# line and audit record. The service's own tokens are affirming or
# contraindicated, and it rejects contraindicated ones before this policy
# runs, so the reason below explains only a warning or missing status. It
# also shows the form for policies of your own. The rules read the input
# only through constant paths, so that the policy engine can reuse a
# decision for tokens that agree on those paths.

default allow := false

allow if input.token.submods.cpu0["ear.status"] == "affirming"

# cpu0_status is the primary TEE's appraisal status, or "" when the token
# has none that is a string.
default cpu0_status := ""

cpu0_status := status if {
	status := input.token.submods.cpu0["ear.status"]
	is_string(status)
}

default cpu0_status_text := "missing"

cpu0_status_text := cpu0_status if cpu0_status != ""

reasons contains {
	"rule": "cpu-status",
	"claim": "submods.cpu0.ear.status",
	"value": cpu0_status,
	"expected": "affirming",
	"message": sprintf("the attestation result of the primary TEE is %s, not affirming, and the default resource policy releases secrets only to affirming results; fix what the attestation reasons in the token name, or store a resource policy that accepts this status", [cpu0_status_text]),
} if {
	cpu0_status != "affirming"
}
