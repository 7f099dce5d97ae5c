package custody

// gpuRules is the part of a release policy that checks the GPUs for the
// release rules that require them. The key broker adds the gpu0 submodule
// to a token when the attestation carried NVIDIA GPU evidence, with the
// GPUs' verified claims under ear.veraison.annotated-evidence.nvidia.
// Like the other rules, it reads the input only at constant paths.
const gpuRules = `
# gpus_attested is true for a release rule that requires no GPU, and for one
# that does when the GPUs' appraisal is affirming and their measurements
# matched NVIDIA's signed RIMs, which vouch for the driver and the VBIOS.
gpus_attested(want) if want.gpu == false

gpus_attested(want) if {
	want.gpu == true
	gpu_status == "affirming"
	gpu_rim == "passed"
}

default gpu_status := ""

gpu_status := value if {
	value := input.token.submods.gpu0["ear.status"]
	is_string(value)
}

# gpu_rim is the result of the GPUs' rim check, or "" when their claims
# have none. Several rim checks with different results give the results
# joined, which never equals "passed".
default gpu_rim := ""

gpu_rim := concat(", ", sort(results)) if {
	results := {sprintf("%v", [c.result]) |
		some c in input.token.submods.gpu0["ear.veraison.annotated-evidence"].nvidia.checks
		c.name == "rim"
	}
	count(results) > 0
}
`

// gpuReasons explains a denial by a release rule that requires GPUs. A
// token without GPUs gets one reason, on the missing gpu0 status, and a
// token with GPUs gets one for each GPU check that failed.
const gpuReasons = `
gpu_required if protected[input.resource.path].gpu == true

reasons contains {
	"rule": "gpu_status",
	"claim": "submods.gpu0.ear.status",
	"value": gpu_status,
	"expected": "affirming",
	"message": sprintf("the token has no GPU appraisal, and the release rule of %s requires attested GPUs; attest the workload's GPUs to the key broker with its TEE (serve --emulated-gpus N for emulated GPUs)", [input.resource.path]),
} if {
	gpu_required
	not input.token.submods.gpu0
}

reasons contains {
	"rule": "gpu_status",
	"claim": "submods.gpu0.ear.status",
	"value": gpu_status,
	"expected": "affirming",
	"message": sprintf("the GPUs' attestation result is not affirming, and the release rule of %s requires attested GPUs; fix what the reasons in the token's gpu0 submodule name", [input.resource.path]),
} if {
	gpu_required
	input.token.submods.gpu0
	gpu_status != "affirming"
}

default gpu_rim_message := "the GPUs' measurements were not compared with NVIDIA's signed RIMs, and the release rule of %s requires that they match; give the key broker the driver and VBIOS RIMs of the GPUs' versions (serve --collateral nvidia-gpu=DIR)"

gpu_rim_message := "the GPUs' measurements do not match their RIMs, so a GPU runs a driver or VBIOS that NVIDIA's RIMs do not vouch for, and the release rule of %s requires a match; run a driver and VBIOS that NVIDIA released" if gpu_rim == "failed"

reasons contains {
	"rule": "gpu_rim",
	"claim": "submods.gpu0.ear.veraison.annotated-evidence.nvidia.checks.rim",
	"value": gpu_rim,
	"expected": "passed",
	"message": sprintf(gpu_rim_message, [input.resource.path]),
} if {
	gpu_required
	input.token.submods.gpu0
	gpu_rim != "passed"
}
`
