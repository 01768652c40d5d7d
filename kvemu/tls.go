package kvemu

// CertificateNames are the DNS names and addresses in the emulator's leaf
// certificate: every Key Vault and Entra host the SDKs use, plus loopback.
var CertificateNames = []string{
	"*.vault.azure.net", "*.managedhsm.azure.net", "*.privatelink.vaultcore.azure.net",
	"*.privatelink.managedhsm.azure.net", "*.vault.azure.cn", "*.vault.usgovcloudapi.net",
	"login.microsoftonline.com", "login.windows.net", "login.microsoft.com",
	"localhost", "127.0.0.1", "::1",
}
