# A resource policy that releases only default/key/other and explains, with
# one reason, why it denies every other path. Tests of the policy package
# and of the service read it.
package custom

default allow := false

allow if input.resource.path == "default/key/other"

reasons contains {
	"rule": "path",
	"claim": "resource.path",
	"value": input.resource.path,
	"expected": "default/key/other",
	"message": sprintf("resource %s is not default/key/other, the only resource this policy releases", [input.resource.path]),
} if {
	input.resource.path != "default/key/other"
}
