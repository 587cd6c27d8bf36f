// The console's one third-party module: the parts of ethers (npm, package-lock.json) the page uses,
// bundled by esbuild into static/vendor.js (`npm run build:console`); served from the gateway, never a CDN.
export {
  Interface, AbiCoder, TypedDataEncoder, keccak256, sha256, id, getAddress, isAddress, formatEther, parseEther,
  formatUnits, toUtf8Bytes, toUtf8String, hexlify, getBytes, zeroPadValue, toBeHex, toBeArray, scrypt, decodeBase58,
  verifyTypedData, verifyMessage, encodeBase64, decodeBase64,
} from "ethers";
