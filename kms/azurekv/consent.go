package azurekv

import "net/url"

// AdminConsentURL returns the URL at which an administrator of tenant
// grants admin consent to the platform's multi-tenant app clientID,
// creating its service principal there (credential mode [PlatformApp]).
func AdminConsentURL(tenant, clientID string) string {
	return "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/adminconsent?client_id=" + url.QueryEscape(clientID)
}

// CreateServicePrincipalCommand returns the Azure CLI command that creates
// the service principal of the platform's app clientID in the signed-in
// tenant: the command-line alternative to [AdminConsentURL].
func CreateServicePrincipalCommand(clientID string) string {
	return "az ad sp create --id " + clientID
}
