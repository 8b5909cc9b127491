/** A folder's name made into a valid npm package name: lower case, no spaces, no leading dot. */
export function packageNameFor(folderName) {
  const name = folderName
    .trim()
    .toLowerCase()
    .replace(/\s+/g, '-')
    .replace(/^[._]+/, '')
    .replace(/[^a-z0-9-~._]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  return name || 'convoy-app';
}
