# Default appraisal of verified claims. The service appends this body to a
# header that sets the package and `tee`, one module per TEE.
#
# input.claims: the verifier's claims (attest.Claims as JSON).
# input.config: allow_emulated (bool), tcb_statuses (accepted TCB statuses),
#   min_tcb_evaluation_data_number (lowest accepted Intel TCB evaluation
#   data number of SGX and TDX evidence; absent or 0 sets no minimum),
#   max_vmpl (highest accepted VMPL of SEV-SNP evidence; absent accepts any).
#   Both also apply to the SGX, TDX and SEV-SNP claims that composite
#   evidence and MAA and Intel Trust Authority tokens carry.
# data.reference_values: reference value name -> accepted values, such as
#   "snp.measurement" -> ["<hex>", ...]. A name whose values have all
#   expired maps to an empty list.
#
# Every failed rule adds one reason object to `deny`:
#   {rule, claim, value, expected, message}
# The rule names and messages are those of the appraise package, so that the
# command line and the service explain a rejection in the same words. The
# debug message differs in its fix, because the service has no --allow-debug
# flag and accepts a debug TEE only under a stored attestation policy.

# The rules read the input only through constant paths such as
# input.claims.tcb.status, never through object.get(input.claims, name) or
# the whole input, so that the policy engine can reuse a decision for claims
# that agree on those paths.

default accepted_tcb_statuses := ["UpToDate", "SWHardeningNeeded"]

accepted_tcb_statuses := input.config.tcb_statuses

allow_emulated if input.config.allow_emulated == true

default claim_tee := ""

claim_tee := input.claims.tee

default claim_measurement := ""

claim_measurement := input.claims.measurement

default claim_host_data := ""

claim_host_data := input.claims.host_data

default claim_chip_id := ""

claim_chip_id := input.claims.chip_id

optional_claims := {"host_data": claim_host_data, "chip_id": claim_chip_id}

default trust_anchor_name := ""

trust_anchor_name := input.claims.trust_anchor.name

default tcb_status := ""

tcb_status := input.claims.tcb.status

default advisory_ids := []

advisory_ids := input.claims.tcb.advisory_ids

default reference_values := {}

reference_values := data.reference_values

# concat, not sprintf: the rules below look up references several times per
# appraisal, and formatting cost more than the rest of the lookup.
references(name) := object.get(reference_values, concat(".", [tee, name]), [])

lowered(values) := {lower(v) | some v in values}

deny contains {
	"rule": "tee",
	"claim": "tee",
	"value": claim_tee,
	"expected": tee,
	"message": sprintf("evidence is from a %s TEE, but this policy appraises %s evidence", [claim_tee, tee]),
} if {
	claim_tee != tee
}

# flag_reason is the reason that rejects the boolean claim name, such as
# debug or emulated, whose value as JSON text is value.
flag_reason(name, value, message) := {
	"rule": name,
	"claim": name,
	"value": value,
	"expected": "false",
	"message": message,
}

deny contains flag_reason(
	"emulated", "true",
	"evidence comes from an emulated TEE signed by a development root, which proves no hardware; pass --allow-emulated only for development",
) if {
	input.claims.emulated == true
	not allow_emulated
}

# attest.Claims always writes debug and emulated as booleans. Claims JSON
# encoded elsewhere may lack them or give another type, which the rules
# above, matching only true, would read as false, so such claims reject.
# The checks go through helper rules because OPA v1 evaluates
# `not x in {true, false}` to false, not true, when x is undefined.
emulated_boolean if is_boolean(input.claims.emulated)

debug_boolean if is_boolean(input.claims.debug)

default emulated_text := "missing"

emulated_text := json.marshal(input.claims.emulated)

default debug_text := "missing"

debug_text := json.marshal(input.claims.debug)

# non_boolean_reason rejects the claim name, whose JSON text is not a
# boolean. The argument unknown states what the claim thus leaves undecided.
non_boolean_reason(name, text, unknown) := flag_reason(
	name, text,
	sprintf("the %s claim is %s, not a boolean, so %s; appraise the claims as the verifier returned them", [name, text, unknown]),
)

deny contains non_boolean_reason("emulated", emulated_text, "it is unknown whether a TEE or an emulator produced the evidence") if {
	not emulated_boolean
}

deny contains non_boolean_reason("debug", debug_text, "the TEE's debug state is unknown") if {
	not debug_boolean
}

deny contains {
	"rule": "test-key",
	"claim": "trust_anchor.test_key",
	"value": "true",
	"expected": "false",
	"message": sprintf("the trust anchor %s is a key published for testing, which proves the format but no hardware", [trust_anchor_name]),
} if {
	# Absent means false, because attest.Claims omits a false test_key.
	input.claims.trust_anchor.test_key != false
}

deny contains flag_reason(
	"debug", "true",
	sprintf("the %s TEE runs in debug mode, so its memory is readable by the host; rebuild it without debug, or for testing store an attestation policy for %s that accepts debug (edit the output of `cloister policy default %s` and store it with `cloister policy set %s FILE`)", [claim_tee, tee, tee, tee]),
) if {
	input.claims.debug == true
}

status_phrases := {
	"UpToDate": "up to date",
	"SWHardeningNeeded": "software hardening needed",
	"ConfigurationNeeded": "configuration needed",
	"ConfigurationAndSWHardeningNeeded": "configuration and software hardening needed",
	"OutOfDate": "out of date",
	"OutOfDateConfigurationNeeded": "out of date and configuration needed",
	"Revoked": "revoked",
	"NoMatchingTcbLevel": "no matching TCB level: the platform is below every TCB level the vendor lists (Intel: TCB level not supported)",
	"NotDetermined": "not determined: no TCB Info for this platform was supplied",
}

advisories := sprintf(", advisories %s", [concat(", ", advisory_ids)]) if {
	count(advisory_ids) > 0
} else := ""

# The service takes collateral with --collateral but has no
# --allow-undetermined-tcb flag, so an undetermined status names --tcb-status
# as the other way out.
tcb_fix := "supply the TCB Info and QE Identity for this platform with --collateral" if {
	tcb_status == "NotDetermined"
} else := "relaunch the TD, because the platform already runs an up-to-date TDX module (TD relaunch advised), and change the platform configuration as the advisories require" if {
	input.claims.tcb.relaunch_advised == true
	tcb_status == "OutOfDateConfigurationNeeded"
} else := "relaunch the TD, because the platform already runs an up-to-date TDX module (TD relaunch advised)" if {
	input.claims.tcb.relaunch_advised == true
} else := "update the platform firmware"

# NoMatchingTcbLevel is rejected even when tcb_statuses lists it: no TCB
# level of Intel's TCB Info (or QE Identity) matches the platform, so its
# TCB is unknown, and Intel's Quote Verification Library fails such a quote
# with TCB_NOT_SUPPORTED. appraise.CheckTCBStatus does the same.
no_matching_level := "NoMatchingTcbLevel"

tcb_status_rejected if {
	tcb_status != ""
	not tcb_status in accepted_tcb_statuses
}

tcb_status_rejected if tcb_status == no_matching_level

tcb_remedy := "update the platform firmware to a TCB level that Intel's TCB Info lists, because no option accepts a platform whose TCB is unknown" if {
	tcb_status == no_matching_level
} else := sprintf("%s, or accept the status with --tcb-status %s", [tcb_fix, tcb_status])

deny contains {
	"rule": "tcb-status",
	"claim": "tcb.status",
	"value": tcb_status,
	"expected": concat(" or ", [s | some s in accepted_tcb_statuses; s != no_matching_level]),
	"message": sprintf("TCB status %s (%s) is not accepted%s; %s", [tcb_status, object.get(status_phrases, tcb_status, tcb_status), advisories, tcb_remedy]),
} if {
	tcb_status_rejected
}

# The hardware claims of SEV-SNP, SGX and TDX evidence also reach this
# policy inside composite evidence, whose claims are those of its CPU part
# (attribute cpu_tee), and inside MAA and Intel Trust Authority tokens,
# which name the TEE the service appraised (attributes isolation_tee and
# attester_type). evidence_tee is the TEE of the evidence that carries the
# hardware claims, and hardware_tee the TEE of those claims, or "" for
# other evidence, as appraise.HardwareTEE derives them.
evidence_tee := input.claims.attributes.cpu_tee if {
	tee == "composite"
} else := tee

maa_isolation_tees := {"sevsnpvm": "snp", "tdxvm": "tdx", "sgx": "sgx"}

ita_attester_types := {"TDX": "tdx", "SGX": "sgx"}

default hardware_tee := ""

hardware_tee := evidence_tee if evidence_tee in {"snp", "sgx", "tdx"}

hardware_tee := maa_isolation_tees[input.claims.attributes.isolation_tee] if evidence_tee == "maa-token"

hardware_tee := ita_attester_types[input.claims.attributes.attester_type] if evidence_tee == "ita-token"

evidence_is_token if evidence_tee in {"maa-token", "ita-token"}

# Intel raises the TCB evaluation data number with each TCB recovery event.
# SGX and TDX claims whose TCB Info or QE Identity has a number below the
# configured minimum predate a recovery and reject, and so do claims without
# the number, because no TCB Info or QE Identity was verified or, for a
# token, because the token does not state it.
default min_tcb_evaluation_data_number := 0

min_tcb_evaluation_data_number := input.config.min_tcb_evaluation_data_number

default tcb_evaluation_data_number := null

tcb_evaluation_data_number := input.claims.attributes.tcb_evaluation_data_number

min_tcb_evaluation_data_number_text := sprintf(">= %d", [min_tcb_evaluation_data_number])

missing_tcb_evaluation_data_number_message := sprintf("the %s token does not state the TCB evaluation data number of the TCB Info and QE Identity that its service used for the %s evidence, so the minimum %d cannot be checked; verify the %s quote itself with the current TCB Info and QE Identity (--collateral), or remove --min-tcb-evaluation-data-number", [evidence_tee, hardware_tee, min_tcb_evaluation_data_number, hardware_tee]) if {
	evidence_is_token
} else := sprintf("the %s claims have no TCB evaluation data number, because no TCB Info or QE Identity was verified, so the minimum %d cannot be checked; supply the current TCB Info and QE Identity with --collateral, or remove --min-tcb-evaluation-data-number", [tee, min_tcb_evaluation_data_number])

deny contains {
	"rule": "min-tcb-evaluation-data-number",
	"claim": "attributes.tcb_evaluation_data_number",
	"value": "",
	"expected": min_tcb_evaluation_data_number_text,
	"message": missing_tcb_evaluation_data_number_message,
} if {
	min_tcb_evaluation_data_number > 0
	hardware_tee in {"sgx", "tdx"}
	not valid_tcb_evaluation_data_number
}

deny contains {
	"rule": "min-tcb-evaluation-data-number",
	"claim": "attributes.tcb_evaluation_data_number",
	"value": sprintf("%d", [tcb_evaluation_data_number]),
	"expected": min_tcb_evaluation_data_number_text,
	"message": sprintf("TCB evaluation data number %d (the lower of the TCB Info's and the QE Identity's) is below the minimum %d, so the collateral predates a TCB recovery event; fetch the current TCB Info and QE Identity from Intel PCS, or lower --min-tcb-evaluation-data-number", [tcb_evaluation_data_number, min_tcb_evaluation_data_number]),
} if {
	min_tcb_evaluation_data_number > 0
	hardware_tee in {"sgx", "tdx"}
	valid_tcb_evaluation_data_number
	tcb_evaluation_data_number < min_tcb_evaluation_data_number
}

valid_tcb_evaluation_data_number if {
	is_number(tcb_evaluation_data_number)
	tcb_evaluation_data_number >= 0
	tcb_evaluation_data_number == floor(tcb_evaluation_data_number)
}

# Software at VMPL n can request SEV-SNP reports for VMPL n and every less
# privileged VMPL, so a report from a VMPL above max_vmpl may carry report
# data that less privileged software chose. Claims without a numeric VMPL
# reject when a maximum is set. An MAA token states the VMPL as
# x-ms-sevsnpvm-vmpl.
vmpl_attribute := "x-ms-sevsnpvm-vmpl" if {
	evidence_tee == "maa-token"
} else := "vmpl"

default claim_vmpl := null

claim_vmpl := input.claims.attributes.vmpl if evidence_tee != "maa-token"

claim_vmpl := input.claims.attributes["x-ms-sevsnpvm-vmpl"] if evidence_tee == "maa-token"

max_vmpl_set if is_number(input.config.max_vmpl)

valid_vmpl if {
	is_number(claim_vmpl)
	claim_vmpl >= 0
	claim_vmpl == floor(claim_vmpl)
}

missing_vmpl_message := sprintf("the %s token does not state the VMPL of the SEV-SNP report as a number in x-ms-sevsnpvm-vmpl, so the maximum VMPL %d cannot be checked; pass the token as Microsoft Azure Attestation issued it, or remove --max-vmpl", [evidence_tee, input.config.max_vmpl]) if {
	evidence_tee == "maa-token"
} else := sprintf("the %s claims have no VMPL, so the maximum VMPL %d cannot be checked; appraise the claims as the verifier returned them, or remove --max-vmpl", [tee, input.config.max_vmpl])

deny contains {
	"rule": "max-vmpl",
	"claim": concat(".", ["attributes", vmpl_attribute]),
	"value": "",
	"expected": sprintf("<= %d", [input.config.max_vmpl]),
	"message": missing_vmpl_message,
} if {
	max_vmpl_set
	hardware_tee == "snp"
	not valid_vmpl
}

deny contains {
	"rule": "max-vmpl",
	"claim": concat(".", ["attributes", vmpl_attribute]),
	"value": sprintf("%d", [claim_vmpl]),
	"expected": sprintf("<= %d", [input.config.max_vmpl]),
	"message": sprintf("the SEV-SNP report is from VMPL %d, above the maximum VMPL %d, so software less privileged than VMPL %d may have chosen its report data; request the report from VMPL %d or lower, or raise --max-vmpl to %d", [claim_vmpl, input.config.max_vmpl, input.config.max_vmpl, input.config.max_vmpl, claim_vmpl]),
} if {
	max_vmpl_set
	hardware_tee == "snp"
	valid_vmpl
	claim_vmpl > input.config.max_vmpl
}

# A required check counts only when it passed. A result other than passed,
# failed or not-checked, or a required flag that is not a boolean, comes
# from claims that attest.Claims did not write and rejects too.
deny contains {
	"rule": "required-check",
	"claim": sprintf("checks.%s", [check.name]),
	"value": object.get(check, "result", "missing"),
	"expected": "passed",
	"message": required_check_message(check),
} if {
	some check in input.claims.checks
	check.required != false
	not check_ran(check)
}

# check_ran is a function so that `not check_ran(check)` is true also when
# the check has no result.
check_ran(check) if check.result in {"passed", "failed"}

required_check_message(check) := sprintf("required check %s did not run: %s", [check.name, object.get(check, "detail", "")]) if {
	check.result == "not-checked"
} else := sprintf("required check %s has the result %s, which is not passed, failed or not-checked; appraise the claims as the verifier returned them", [check.name, json.marshal(object.get(check, "result", "missing"))])

deny contains {
	"rule": "failed-check",
	"claim": sprintf("checks.%s", [check.name]),
	"value": check.result,
	"expected": "passed",
	"message": sprintf("check %s failed: %s", [check.name, object.get(check, "detail", "")]),
} if {
	some check in input.claims.checks
	check.result == "failed"
}

# The launch measurement must be one of the registered reference values.
# Without any, nothing vouches for the code in the TEE, so the rule fails
# closed. A name whose values have all expired gets the expiry reason
# further down instead. A GPU has no launch measurement: the rule after
# this one applies.
launch_measurement_required if tee != "nvidia-gpu"

measurement_key := concat(".", [tee, "measurement"])

deny contains {
	"rule": "reference-value",
	"claim": "measurement",
	"value": claim_measurement,
	"expected": sprintf("a registered %s.measurement", [tee]),
	"message": sprintf("no reference value %s.measurement is registered, so the measurement %s cannot be appraised; register the expected measurement with `cloister refvalue add %s.measurement <hex>`", [tee, claim_measurement, tee]),
} if {
	launch_measurement_required
	not measurement_key in object.keys(reference_values)
}

# For NVIDIA GPUs, NVIDIA's signed RIMs vouch for the driver and VBIOS
# measurements when the rim check passed. Without that, reference values
# registered for the GPU's measurements (nvidia-gpu.fwid, nvidia-gpu.blockN)
# must vouch for them, so the rule fails closed when there are neither. A
# failed rim check is already a reason of its own. The rule after this one
# applies it to each GPU of composite evidence.
default rim_result := "absent"

rim_result := check.result if {
	some check in input.claims.checks
	check.name == "rim"
}

gpu_references_registered if {
	some name, _ in input.claims.measurements
	count(references(reference_name(name))) > 0
}

deny contains {
	"rule": "reference-value",
	"claim": "checks.rim",
	"value": rim_result,
	"expected": "passed, or registered reference values nvidia-gpu.fwid or nvidia-gpu.blockN",
	"message": sprintf("nothing vouches for the GPU firmware: the rim check is %s and no reference value for the GPU's measurements is registered; supply NVIDIA's driver and VBIOS RIMs with --collateral nvidia-gpu=DIR, or register the expected values with `cloister refvalue add nvidia-gpu.fwid <hex>` (and nvidia-gpu.blockN)", [rim_result]),
} if {
	tee == "nvidia-gpu"
	not rim_result in {"passed", "failed"}
	not gpu_references_registered
}

deny contains {
	"rule": "reference-value",
	"claim": sprintf("checks.%s", [check.name]),
	"value": object.get(check, "result", "missing"),
	"expected": "passed, or a registered reference value composite.fwid",
	"message": sprintf("nothing vouches for the firmware of %s: the %s check is %s and no reference value composite.fwid is registered; supply NVIDIA's driver and VBIOS RIMs with --collateral nvidia-gpu=DIR, or register the expected FWID with `cloister refvalue add composite.fwid <hex>`", [trim_suffix(check.name, "/rim"), check.name, object.get(check, "result", "missing")]),
} if {
	tee == "composite"
	some check in input.claims.checks
	regex.match(`^gpu[0-9]+/rim$`, check.name)
	not check_ran(check)
	count(references("fwid")) == 0
}

deny contains {
	"rule": "measurement",
	"claim": "measurement",
	"value": claim_measurement,
	"expected": concat(" or ", references("measurement")),
	"message": sprintf("measurement %s is not among the reference values %s.measurement", [claim_measurement, tee]),
} if {
	count(references("measurement")) > 0
	not lower(claim_measurement) in lowered(references("measurement"))
}

# Host data, chip ID and every named measurement are checked only when
# reference values for them are registered.
deny contains {
	"rule": replace(name, "_", "-"),
	"claim": name,
	"value": optional_claims[name],
	"expected": concat(" or ", references(name)),
	"message": sprintf("%s %s is not among the reference values %s.%s", [name, optional_claims[name], tee, name]),
} if {
	some name in ["host_data", "chip_id"]
	count(references(name)) > 0
	not lower(optional_claims[name]) in lowered(references(name))
}

deny contains {
	"rule": "measurement",
	"claim": sprintf("measurements.%s", [name]),
	"value": value,
	"expected": concat(" or ", references(reference_name(name))),
	"message": sprintf("measurement %s %s is not among the reference values %s.%s", [name, value, tee, reference_name(name)]),
} if {
	some name, value in input.claims.measurements
	name != "measurement"
	count(references(reference_name(name))) > 0
	not lower(value) in lowered(references(reference_name(name)))
}

# A reference value registered for a named measurement that the claims do
# not carry cannot be compared, and skipping it would accept code the
# operator meant to pin, so it rejects: a TPM quote chooses its PCR
# selection, a TDX 1.0 quote has no MRSERVICETD, and tokens carry some
# measurements only when the attested TEE reported them.
measurement_reference_names contains reference_name(name) if {
	some name, _ in input.claims.measurements
}

claim_reference_names := {"measurement", "host_data", "chip_id"}

tee_prefix := concat("", [tee, "."])

deny contains {
	"rule": "reference-value",
	"claim": sprintf("measurements.%s", [name]),
	"value": "",
	"expected": concat(" or ", values),
	"message": sprintf("reference value %s is registered, but the %s claims have no measurement %s, so it cannot be compared (the claims have %s); collect evidence that reports %s, or, if the name is wrong, remove it with `cloister refvalue rm %s`", [key, tee, name, measurement_names_text, name, key]),
} if {
	some key, values in reference_values
	startswith(key, tee_prefix)
	name := substring(key, count(tee_prefix), -1)
	not name in claim_reference_names
	not name in measurement_reference_names
}

# A name whose registered values have all expired arrives with an empty
# list. Its check is not dropped, because that would accept any value of a
# claim the operator pinned: the evidence is rejected until a current value
# is registered or the name is removed. The launch measurement is required,
# so removing its name is no fix.
deny contains {
	"rule": "reference-value",
	"claim": substring(key, count(tee_prefix), -1),
	"value": "",
	"expected": sprintf("an unexpired value of %s", [key]),
	"message": sprintf("every registered value of reference value %s has expired, so the claim cannot be appraised; %s", [key, expired_fix(key)]),
} if {
	some key, values in reference_values
	startswith(key, tee_prefix)
	count(values) == 0
}

expired_fix(key) := sprintf("register the current value with `cloister refvalue add %s <hex>`", [key]) if {
	key == measurement_key
	launch_measurement_required
} else := sprintf("register the current value with `cloister refvalue add %s <hex>`, or remove the name with `cloister refvalue rm %s`", [key, key])

measurement_names_text := concat(", ", sort(measurement_reference_names)) if {
	count(measurement_reference_names) > 0
} else := "no named measurements"

# Evidence of several NVIDIA GPUs names the measurements of the second and
# later GPUs gpuN/fwid and gpuN/blockN, and composite evidence names every
# GPU's FWID gpuN/fwid. Each GPU must match the one set of reference values
# (nvidia-gpu.fwid, or composite.fwid for composite evidence).
gpu_tees := {"nvidia-gpu", "composite"}

reference_name(name) := regex.replace(name, "^gpu[0-9]+/", "") if tee in gpu_tees

reference_name(name) := name if not tee in gpu_tees
